"""``umrf demo rbm``: Bernoulli RBMs on the binarised 8×8 digits, umrf vs scikit-learn.

It trains two RBM sizes on umrf's fixed split of the digits
(``umrf.models.load_digits(binarize=True)``, pixel ≥ 8 → 1):

* ``--hidden`` units (default 16): small enough for the EXACT ``log Z``
  (``BernoulliRBM.log_partition``: the 2^16 hidden configurations,
  enumerated in chunks);
* ``--hidden-ais`` units (default 64): ``log Z`` by annealed importance
  sampling (``umrf.inference.ais`` on Salakhutdinov & Murray's base-rate
  path, block Gibbs transitions), reported with its standard error.

Each size is trained twice with the same size, epochs, minibatch size and
learning rate: by umrf (persistent CD, Tieleman 2008, with ``--pcd-steps``
block-Gibbs sweeps per update, plain SGD, one jitted ``lax.scan`` per epoch:
``umrf.training.train_epoch``) and by scikit-learn's ``BernoulliRBM`` (PCD-1
with SGD, numpy). With ``--pcd-steps 1`` (default) both run the same
algorithm, so their final iterates agree up to seed noise (which, for PCD-1 at
this learning rate, is up to ~2 nats per image between seeds); umrf's reported
model is the Polyak average of its last ``--average-last`` epoch-end
parameters (default 10), which removes most of that noise at no training
cost; the row "umrf final" is its final iterate, the like-for-like
comparison with scikit-learn's returned model (``benchmarks/rbm.py`` averages
both over seeds). Both are then evaluated by umrf: scikit-learn's weights are loaded
into a ``umrf.models.BernoulliRBM`` and scored with the same exact or AIS
``log Z``. The printout is the test set's average log-likelihood in nats per
image (higher is better) and the training time per epoch.

It writes ``rbm_digits.png`` (the larger umrf model's filters, samples from
block Gibbs chains, and the same for the exact-size model) and
``rbm_digits.npz``: ``W``, ``b_visible``, ``c_hidden`` of the ``--hidden-ais``
umrf model, ``W_exact``, ``b_visible_exact``, ``c_hidden_exact`` of the
``--hidden`` one, ``test_indices`` (into ``sklearn.datasets.load_digits()``)
and the four test log-likelihoods. Files are written atomically.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from umrf.cli._files import save_npz

HELP = "Bernoulli RBMs on binarised digits: exact and AIS test log-likelihood vs scikit-learn"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``umrf demo rbm``."""
    parser.add_argument("--out", type=Path, default=Path("."), help="directory for PNG and npz")
    parser.add_argument("--hidden", type=int, default=16, help="hidden units (exact log Z)")
    parser.add_argument("--hidden-ais", type=int, default=64, help="hidden units (AIS log Z)")
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=10, help="minibatch size")
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate")
    parser.add_argument("--pcd-steps", type=int, default=1, help="Gibbs sweeps per PCD update")
    parser.add_argument(
        "--average-last",
        type=int,
        default=10,
        help="report umrf's average of the last N epoch-end parameters (0: the final iterate)",
    )
    parser.add_argument("--ais-chains", type=int, default=200, help="AIS runs")
    parser.add_argument("--ais-temperatures", type=int, default=3000, help="AIS temperatures")
    parser.add_argument("--sample-steps", type=int, default=1000, help="Gibbs sweeps for samples")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed")
    parser.add_argument(
        "--no-sklearn", action="store_true", help="skip scikit-learn's BernoulliRBM"
    )


def _check(args: argparse.Namespace) -> None:
    for name in (
        "hidden",
        "hidden_ais",
        "epochs",
        "batch_size",
        "pcd_steps",
        "ais_temperatures",
        "sample_steps",
    ):
        if getattr(args, name) < 1:
            raise SystemExit(f"umrf demo rbm: --{name.replace('_', '-')} must be >= 1")
    if args.average_last < 0:
        raise SystemExit("umrf demo rbm: --average-last must be >= 0")
    if args.ais_chains < 2:
        raise SystemExit("umrf demo rbm: --ais-chains must be >= 2")
    if not args.lr > 0:
        raise SystemExit("umrf demo rbm: --lr must be > 0")
    if args.hidden > 24:
        raise SystemExit(
            "umrf demo rbm: --hidden is the exactly evaluated model; use <= 24 units "
            "(larger models are evaluated with AIS: --hidden-ais)"
        )


def run(args: argparse.Namespace) -> int:
    """Run the RBM demo; returns the exit status."""
    _check(args)
    try:
        import sklearn  # noqa: F401  (the digits ship with scikit-learn)
    except ImportError:
        raise SystemExit(
            "umrf demo rbm needs scikit-learn for the digits (and the comparison): "
            "pip install scikit-learn"
        ) from None
    import jax
    import jax.numpy as jnp
    import numpy as np

    import umrf

    t_start = time.perf_counter()
    digits = umrf.models.load_digits(binarize=True)
    x_train = np.asarray(digits.x_train, np.float32).reshape(len(digits.x_train), 64)
    x_test = np.asarray(digits.x_test, np.float32).reshape(len(digits.x_test), 64)
    key = jax.random.key(args.seed)
    k_exact, k_ais_model, k_eval, k_sample = jax.random.split(key, 4)
    print(
        f"umrf demo rbm: {len(x_train)} training and {len(x_test)} test binarised digits (8x8), "
        f"{args.epochs} epochs, batch {args.batch_size}, SGD lr {args.lr}, "
        f"PCD-{args.pcd_steps}"
    )
    path = umrf.inference.rbm_base_rate_path(x_train)

    ais_results = {}

    def evaluate(rbm, exact: bool, k, who: str):
        """(test average log-likelihood, log Z, its standard error or 0, seconds)."""
        t0 = time.perf_counter()
        if exact:
            log_z, se = float(rbm.log_partition()), 0.0
        else:
            res = umrf.inference.ais(
                umrf.samplers.gibbs(rbm),
                path,
                k,
                rbm,
                num_chains=args.ais_chains,
                num_temperatures=args.ais_temperatures,
            )
            log_z, se = float(res.log_z), float(res.log_z_stderr)
            ais_results[who] = res
        ll = float(-np.mean(np.asarray(jax.vmap(rbm.free_energy)(jnp.asarray(x_test)))) - log_z)
        return ll, log_z, se, time.perf_counter() - t0

    rows, models = [], {}
    for size, exact, k_model in (
        (args.hidden, True, k_exact),
        (args.hidden_ais, False, k_ais_model),
    ):
        rbm, final_rbm, per_epoch, first = _train_umrf(args, size, x_train, k_model)
        k = jax.random.fold_in(k_eval, size)
        ll, log_z, se, t_eval = evaluate(rbm, exact, k, "umrf")
        models[size] = rbm
        rows.append(("umrf", size, per_epoch, first, ll, log_z, se, exact, t_eval))
        if args.average_last > 1:
            ll, log_z, se, t_eval = evaluate(final_rbm, exact, k, "umrf, final iterate")
            rows.append(("umrf final", size, per_epoch, first, ll, log_z, se, exact, t_eval))
        if not args.no_sklearn:
            sk_rbm, sk_epoch = _train_sklearn(args, size, x_train)
            k = jax.random.fold_in(k_eval, size)
            ll, log_z, se, t_eval = evaluate(sk_rbm, exact, k, "scikit-learn")
            rows.append(("scikit-learn", size, sk_epoch, sk_epoch, ll, log_z, se, exact, t_eval))

    print(
        f"\n{'trainer':<13} {'hidden':>6} {'s/epoch':>9} {'1st epoch':>9} "
        f"{'test log-lik (nats/image)':>26} {'log Z':>10} {'evaluated by':>24}"
    )
    for who, size, per_epoch, first, ll, log_z, se, exact, _ in rows:
        how = "exact log Z" if exact else f"AIS, ±{se:.3f} (1 s.e.)"
        print(
            f"{who:<13} {size:>6} {per_epoch:>9.4f} {first:>9.2f} {ll:>26.3f} {log_z:>10.3f} "
            f"{how:>24}"
        )
    if args.average_last > 1:
        print(
            f"umrf: the average of the last {args.average_last} epoch-end parameters; "
            "umrf final: the last iterate (like scikit-learn's returned model)"
        )
    if not args.no_sklearn:
        for size in (args.hidden, args.hidden_ais):
            u = next(r for r in rows if r[0] == "umrf" and r[1] == size)
            s = next(r for r in rows if r[0] == "scikit-learn" and r[1] == size)
            print(
                f"{size} hidden: umrf {s[2] / u[2]:.1f}x faster per epoch (steady state), "
                f"log-likelihood {u[4] - s[4]:+.3f} nats vs scikit-learn"
            )

    # ---- samples: block Gibbs chains from uniform noise
    samples = {}
    for size, rbm in models.items():
        x0 = jax.random.bernoulli(jax.random.fold_in(k_sample, size), 0.5, (64, 64))
        final, _ = umrf.sample_chains(
            umrf.samplers.gibbs(rbm),
            jax.random.fold_in(k_sample, size + 1),
            rbm,
            x0.astype(jnp.int8),
            num_steps=args.sample_steps,
        )
        # show p(v | h) of the last sweep: the chain's current image, without pixel noise
        samples[size] = np.asarray(jax.vmap(rbm.visible_probabilities)(final.hidden))

    args.out.mkdir(parents=True, exist_ok=True)
    big, small = models[args.hidden_ais], models[args.hidden]
    lls = {f"{r[0].replace('-', '_').replace(' ', '_')}_{r[1]}": r[4] for r in rows}
    arrays = {
        "W": np.asarray(big.W, np.float32),
        "b_visible": np.asarray(big.b_visible, np.float32),
        "c_hidden": np.asarray(big.c_hidden, np.float32),
        "W_exact": np.asarray(small.W, np.float32),
        "b_visible_exact": np.asarray(small.b_visible, np.float32),
        "c_hidden_exact": np.asarray(small.c_hidden, np.float32),
        "test_indices": np.asarray(digits.test_indices, np.int64),
        **{f"test_log_likelihood_{k}": np.float64(v) for k, v in lls.items()},
    }
    npz = args.out / "rbm_digits.npz"
    save_npz(npz, **arrays)
    png = args.out / "rbm_digits.png"
    _figure(png, models, samples, rows, args, x_test, ais_results)
    print(f"\nwrote {png.resolve()}\nwrote {npz.resolve()}")
    print(f"total {time.perf_counter() - t_start:.1f} s")
    return 0


def _train_umrf(args: argparse.Namespace, num_hidden: int, x_train, key):
    """PCD-k with SGD, one compiled epoch: (averaged rbm, final rbm, s/epoch, first epoch s)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import umrf

    k_init, k_run = jax.random.split(key)
    rbm = umrf.models.BernoulliRBM.random(k_init, 64, num_hidden, scale=0.01)
    loss_fn = umrf.training.contrastive_divergence_loss(
        umrf.samplers.gibbs(rbm),
        umrf.models.relaxation(rbm).energy_fn,
        num_steps=args.pcd_steps,
        persistent=True,
    )
    optimizer = optax.sgd(args.lr)
    chains = jnp.zeros((args.batch_size, 64), jnp.float32)
    state = umrf.training.init_train_state(optimizer, k_run, rbm, extra=chains)
    data = jnp.asarray(x_train)
    times, snapshots = [], []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        state, losses = umrf.training.train_epoch(
            loss_fn, optimizer, state, data, batch_size=args.batch_size
        )
        jax.block_until_ready(losses)
        times.append(time.perf_counter() - t0)
        if not bool(jnp.isfinite(losses).all()):
            raise SystemExit("umrf demo rbm: a non-finite loss; lower --lr")
        snapshots.append(state.params)
    steady = float(np.median(times[1:])) if len(times) > 1 else times[0]
    last = snapshots[-args.average_last :] if args.average_last else snapshots[-1:]
    averaged = jax.tree_util.tree_map(lambda *a: sum(a) / len(a), *last)
    return averaged, state.params, steady, times[0]


def _train_sklearn(args: argparse.Namespace, num_hidden: int, x_train):
    """scikit-learn's BernoulliRBM, same size/epochs/batch/rate: (umrf model, s/epoch)."""
    import jax.numpy as jnp
    import numpy as np
    from sklearn.neural_network import BernoulliRBM as SkRBM

    import umrf

    sk = SkRBM(
        n_components=num_hidden,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        n_iter=args.epochs,
        random_state=args.seed,
    )
    t0 = time.perf_counter()
    sk.fit(np.asarray(x_train, np.float64))
    per_epoch = (time.perf_counter() - t0) / args.epochs
    rbm = umrf.models.BernoulliRBM(
        jnp.asarray(sk.components_.T, jnp.float32),
        jnp.asarray(sk.intercept_visible_, jnp.float32),
        jnp.asarray(sk.intercept_hidden_, jnp.float32),
    )
    return rbm, per_epoch


def _tiles(images, cols: int, pad: int = 1, fill: float = 1.0):
    """Arrange ``(n, 8, 8)`` images on a grid with ``cols`` columns."""
    import numpy as np

    n = images.shape[0]
    rows = -(-n // cols)
    out = np.full((rows * (8 + pad) + pad, cols * (8 + pad) + pad), fill, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (8 + pad), pad + c * (8 + pad)
        out[y : y + 8, x : x + 8] = images[i]
    return out


def _figure(path: Path, models, samples, rows, args, x_test, ais_results) -> None:
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sizes = [args.hidden, args.hidden_ais]
    fig, axes = plt.subplots(2, 3, figsize=(15, 10))
    ax = axes[0, 0]
    ax.imshow(_tiles(x_test[:64].reshape(-1, 8, 8), 8, fill=0.3), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title("64 binarised test digits (the data)", fontsize=10)
    ax = axes[1, 0]
    for who, res in ais_results.items():
        if "final" in who:
            continue
        lw = np.asarray(res.log_weights, np.float64)
        ax.hist(lw - lw.max(), bins=30, alpha=0.6, label=f"{who}: ESS {float(res.ess):.0f}")
    ax.set_xlabel("AIS log-weight minus its maximum")
    ax.set_ylabel("runs")
    ax.set_title(
        f"AIS for the {args.hidden_ais}-unit models: {args.ais_chains} runs, "
        f"{args.ais_temperatures} temperatures",
        fontsize=10,
    )
    ax.legend(fontsize=9)
    for row, size in enumerate(sizes):
        W = np.asarray(models[size].W).T.reshape(size, 8, 8)
        scale = np.max(np.abs(W), axis=(1, 2), keepdims=True)
        filters = 0.5 + 0.5 * W / np.maximum(scale, 1e-12)  # each filter scaled to [0, 1]
        cols = int(np.ceil(np.sqrt(size)))
        ll = next(r[4] for r in rows if r[0] == "umrf" and r[1] == size)
        how = "exact log Z" if size == args.hidden else "AIS log Z"
        ax = axes[row, 1]
        ax.imshow(_tiles(filters, cols, fill=0.5), cmap="RdBu_r", vmin=0, vmax=1)
        ax.set_title(
            f"umrf, {size} hidden units: filters W[:, j] (red +, blue -)\n"
            f"test log-lik {ll:.2f} nats/image ({how})",
            fontsize=10,
        )
        ax = axes[row, 2]
        tiles = _tiles(samples[size].reshape(-1, 8, 8), 8, fill=0.3)
        ax.imshow(tiles, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(
            f"umrf, {size} hidden units: 64 chains, {args.sample_steps} Gibbs sweeps from noise\n"
            "(shown: p(v = 1 | h) of the last sweep)",
            fontsize=10,
        )
    for ax in (axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 1], axes[1, 2]):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"umrf BernoulliRBM on binarised 8x8 digits: PCD-{args.pcd_steps}, {args.epochs} epochs, "
        f"batch {args.batch_size}, SGD lr {args.lr}",
        fontsize=12,
    )
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
