"""Effective samples per second of discrete samplers: block Gibbs, GWG, DULA, DMALA; thrml's Gibbs.

Two targets:

* **SK**: a dense Sherrington–Kirkpatrick spin glass, ``n = 100`` spins,
  ``p(s) ∝ exp(β Σ_{i<j} J_ij s_i s_j)`` with ``J_ij ~ N(0, 1/n)`` and β = 0.5
  (paramagnetic) and β = 1.0 (critical). Every pair interacts, so a colouring
  gives no parallelism: a Gibbs sweep is 100 sequential single-site updates.
  umrf's Gibbs runs on the model as a ``DiscreteMRF`` (4 950 pairwise
  factors, chromatic sampler with 100 colour classes); GWG/DULA/DMALA on the
  dense binary relaxation ``E(x) = -½ β sᵀJs``, ``s = 2x - 1``; thrml's
  block Gibbs on an ``IsingEBM`` with the 100 single-spin blocks (the same
  sequential sweep).
* **RBM**: the visible chain of a 64×64 Bernoulli RBM trained on the
  binarised digits (umrf PCD-1, 20 epochs). umrf's block Gibbs ``v → h →
  v``; GWG/DULA/DMALA on the free energy ``F(v)``; thrml's two-block Gibbs on
  the equivalent bipartite Ising model (spins ``s = 2v - 1``, ``t = 2h - 1``:
  fields ``b/2 + W·1/4`` and ``c/2 + Wᵀ·1/4``, couplings ``W/4``).

Every sampler runs the same number of chains from the same random start.
The statistics are the magnetisation (mean of the spins / visible units)
and the energy (``-½ β sᵀJs``, resp. ``F(v)``) after every step; their ESS
is umrf's multi-chain ``effective_sample_size`` after a 20 % burn-in, divided
by the steady-state run time (the second call; the first call, with
compilation, is reported beside it). One step is one full sweep for the Gibbs
samplers, one single-site MH move for GWG and one all-coordinate move for
DULA/DMALA, so the step counts differ: the comparison is per second. DULA is
unadjusted (approximate); its ESS says nothing about its bias.

Usage:
  .venv/bin/python benchmarks/discrete_samplers.py          # full run, writes RESULTS.md
  .venv/bin/python benchmarks/discrete_samplers.py --quick  # smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_section  # noqa: E402

import umrf  # noqa: E402

CHAINS = 32
DLP_STEP = 0.2


# --------------------------------------------------------------------------- targets


def sk_couplings(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(scale=1.0 / np.sqrt(n), size=(n, n))
    j = np.triu(a, 1)
    return (j + j.T).astype(np.float32)


def sk_energy(coupling, x):
    """Dense SK energy of binary states x ∈ {0, 1}^n (``coupling`` = βJ, zero diagonal)."""
    s = 2.0 * x - 1.0
    return -0.5 * s @ (coupling @ s)


def sk_mrf(coupling: np.ndarray) -> umrf.models.DiscreteMRF:
    n = coupling.shape[0]
    sign = np.array([[1.0, -1.0], [-1.0, 1.0]], np.float32)
    factors = [
        umrf.models.Factor((i, j), coupling[i, j] * sign) for i in range(n) for j in range(i + 1, n)
    ]
    return umrf.models.DiscreteMRF([2] * n, factors)


def trained_rbm(num_hidden: int = 64, epochs: int = 20) -> umrf.models.BernoulliRBM:
    digits = umrf.models.load_digits(binarize=True)
    x = jnp.asarray(digits.x_train.reshape(-1, 64))
    rbm = umrf.models.BernoulliRBM.random(jax.random.key(0), 64, num_hidden, scale=0.01)
    loss = umrf.training.contrastive_divergence_loss(
        umrf.samplers.gibbs(rbm), umrf.models.relaxation(rbm).energy_fn, persistent=True
    )
    opt = optax.sgd(0.05)
    state = umrf.training.init_train_state(opt, jax.random.key(1), rbm, extra=jnp.zeros((10, 64)))
    for _ in range(epochs):
        state, _ = umrf.training.train_epoch(loss, opt, state, x, batch_size=10)
    return state.params


# --------------------------------------------------------------------------- runners


def umrf_runner(alg, params, x0, steps):
    def run(key):
        _, trace = umrf.sample_chains(alg, key, params, x0, num_steps=steps)
        return trace.position, trace.info.acceptance_rate

    return run


def thrml_runner(nodes, edges, biases, weights, blocks, steps, x0_blocks, read):
    """thrml block Gibbs (vmap over chains of ``sample_states``); ``read`` maps bool states."""
    import thrml
    from thrml.models import IsingEBM, IsingSamplingProgram

    model = IsingEBM(nodes, edges, jnp.asarray(biases), jnp.asarray(weights), jnp.asarray(1.0))
    program = IsingSamplingProgram(model, [thrml.Block(b) for b in blocks], [])
    schedule = thrml.SamplingSchedule(n_warmup=0, n_samples=steps, steps_per_sample=1)
    observe = [thrml.Block(nodes)]

    def one(key, state):
        return thrml.sample_states(key, program, schedule, state, [], observe)[0]

    @jax.jit
    def batched(keys):
        samples = jax.vmap(one)(keys, x0_blocks)  # (chains, steps, nodes) bool
        return read(jnp.swapaxes(samples, 0, 1)), jnp.ones(samples.shape[:2])

    def run(key):
        return batched(jax.random.split(key, CHAINS))

    return run


def measure(name, run, stats_fn, steps):
    """Compile+first call, steady run time, ESS of (magnetisation, energy), acceptance."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(run(jax.random.key(0)))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    positions, acc = jax.block_until_ready(run(jax.random.key(1)))
    steady = time.perf_counter() - t0
    mag, energy = stats_fn(positions)  # (steps, chains) each
    burn = steps // 5
    ess = [
        float(umrf.samplers.effective_sample_size(jnp.asarray(s[burn:], jnp.float32)))
        for s in (mag, energy)
    ]
    del out
    return {
        "name": name,
        "steps": steps,
        "first": first,
        "run": steady,
        "ess_m": ess[0],
        "ess_e": ess[1],
        "acc": float(np.mean(np.asarray(acc))),
        "e_mean": float(np.mean(np.asarray(energy)[burn:])),
    }


def rows_for(results, reference):
    ref = next(r for r in results if r["name"] == reference)
    rows = []
    for r in results:
        rows.append(
            [
                r["name"],
                r["steps"],
                r["first"],
                r["run"],
                r["acc"],
                r["e_mean"],
                r["ess_m"],
                r["ess_e"],
                r["ess_m"] / r["run"],
                r["ess_e"] / r["run"],
                (r["ess_e"] / r["run"]) / (ref["ess_e"] / ref["run"]),
            ]
        )
    return rows


HEADERS = [
    "sampler",
    "steps",
    "first call s",
    "run s",
    "accept",
    "mean energy",
    "ESS(m)",
    "ESS(E)",
    "ESS(m)/s",
    "ESS(E)/s",
    "ESS(E)/s vs umrf Gibbs",
]


def sk_section(beta, steps, have_thrml):
    n = 100
    coupling = beta * sk_couplings(n)
    x0 = jax.random.bernoulli(jax.random.key(7), 0.5, (CHAINS, n)).astype(jnp.int32)
    j = jnp.asarray(coupling)

    def stats(pos):
        pos = jnp.asarray(pos, jnp.float32)
        s = 2.0 * pos - 1.0
        e = -0.5 * jnp.einsum("tci,ij,tcj->tc", s, j, s)
        return np.asarray(jnp.mean(s, -1)), np.asarray(e)

    t0 = time.perf_counter()
    mrf = sk_mrf(coupling)
    build = time.perf_counter() - t0
    gibbs = umrf.samplers.gibbs(mrf)
    samplers = [
        ("umrf Gibbs (DiscreteMRF)", umrf_runner(gibbs, mrf, x0, steps["gibbs"]), steps["gibbs"]),
        ("umrf GWG", umrf_runner(umrf.samplers.gwg(sk_energy), j, x0, steps["gwg"]), steps["gwg"]),
        (
            f"umrf DULA (α={DLP_STEP})",
            umrf_runner(umrf.samplers.dula(sk_energy, step_size=DLP_STEP), j, x0, steps["dlp"]),
            steps["dlp"],
        ),
        (
            f"umrf DMALA (α={DLP_STEP})",
            umrf_runner(umrf.samplers.dmala(sk_energy, step_size=DLP_STEP), j, x0, steps["dlp"]),
            steps["dlp"],
        ),
    ]
    if have_thrml:
        import thrml

        nodes = [thrml.SpinNode() for _ in range(n)]
        edges = [(nodes[a], nodes[b]) for a in range(n) for b in range(a + 1, n)]
        weights = [coupling[a, b] for a in range(n) for b in range(a + 1, n)]
        init = [x0[:, i : i + 1].astype(bool) for i in range(n)]
        run = thrml_runner(
            nodes,
            edges,
            np.zeros(n),
            np.asarray(weights),
            [[v] for v in nodes],
            steps["gibbs"],
            init,
            lambda b: b.astype(jnp.int32),
        )
        samplers.append(("thrml block Gibbs (100 blocks)", run, steps["gibbs"]))
    results = []
    for name, run, k in samplers:
        results.append(measure(name, run, stats, k))
        print(f"SK β={beta}: {name} done", flush=True)
    return results, build


def rbm_section(steps, have_thrml):
    rbm = trained_rbm()
    nv, nh = rbm.num_visible, rbm.num_hidden
    x0 = jax.random.bernoulli(jax.random.key(8), 0.5, (CHAINS, nv)).astype(jnp.int8)
    free_energy = umrf.models.relaxation(rbm).energy_fn

    def stats(pos):
        v = jnp.asarray(pos, jnp.float32)
        f = jax.vmap(jax.vmap(rbm.free_energy))(v)
        return np.asarray(jnp.mean(v, -1)), np.asarray(f)

    samplers = [
        (
            "umrf block Gibbs (v→h→v)",
            umrf_runner(umrf.samplers.gibbs(rbm), rbm, x0, steps["gibbs"]),
            steps["gibbs"],
        ),
        (
            "umrf GWG",
            umrf_runner(umrf.samplers.gwg(free_energy), rbm, x0, steps["gwg"]),
            steps["gwg"],
        ),
        (
            f"umrf DULA (α={DLP_STEP})",
            umrf_runner(umrf.samplers.dula(free_energy, step_size=DLP_STEP), rbm, x0, steps["dlp"]),
            steps["dlp"],
        ),
        (
            f"umrf DMALA (α={DLP_STEP})",
            umrf_runner(
                umrf.samplers.dmala(free_energy, step_size=DLP_STEP), rbm, x0, steps["dlp"]
            ),
            steps["dlp"],
        ),
    ]
    if have_thrml:
        import thrml

        W = np.asarray(rbm.W, np.float64)
        vis = [thrml.SpinNode() for _ in range(nv)]
        hid = [thrml.SpinNode() for _ in range(nh)]
        edges = [(vis[i], hid[k]) for i in range(nv) for k in range(nh)]
        weights = (W / 4.0).reshape(-1)
        biases = np.concatenate(
            [
                np.asarray(rbm.b_visible) / 2 + W.sum(1) / 4,
                np.asarray(rbm.c_hidden) / 2 + W.sum(0) / 4,
            ]
        )
        init = [x0.astype(bool), jnp.zeros((CHAINS, nh), bool)]
        run = thrml_runner(
            vis + hid,
            edges,
            biases,
            weights,
            [vis, hid],
            steps["gibbs"],
            init,
            lambda b: b[..., :nv].astype(jnp.int8),
        )
        samplers.append(("thrml block Gibbs (2 blocks)", run, steps["gibbs"]))
    results = []
    for name, run, k in samplers:
        results.append(measure(name, run, stats, k))
        print(f"RBM: {name} done", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    args = parser.parse_args()
    if args.quick:
        sk_steps = {"gibbs": 100, "gwg": 1000, "dlp": 200}
        rbm_steps = {"gibbs": 200, "gwg": 2000, "dlp": 400}
        betas = (1.0,)
    else:
        sk_steps = {"gibbs": 2000, "gwg": 40000, "dlp": 8000}
        rbm_steps = {"gibbs": 4000, "gwg": 40000, "dlp": 8000}
        betas = (0.5, 1.0)
    try:
        import thrml  # noqa: F401

        have_thrml = True
    except ImportError:
        have_thrml = False
        print("thrml is not installed (pip install thrml): its rows are skipped")
    parts = []
    for beta in betas:
        results, build = sk_section(beta, sk_steps, have_thrml)
        parts.append(
            f"SK, n = 100, β = {beta}, {CHAINS} chains (building the 4 950-factor DiscreteMRF: "
            f"{build:.1f} s):\n\n" + table(rows_for(results, "umrf Gibbs (DiscreteMRF)"), HEADERS)
        )
    results = rbm_section(rbm_steps, have_thrml)
    parts.append(
        f"RBM visible chain, 64×64 RBM trained on binarised digits, {CHAINS} chains:\n\n"
        + table(rows_for(results, "umrf block Gibbs (v→h→v)"), HEADERS)
    )
    body = (
        f"Command: `.venv/bin/python benchmarks/discrete_samplers.py"
        f"{' --quick' if args.quick else ''}`. ESS after 20 % burn-in over {CHAINS} chains; "
        "ESS/s uses the steady run (second call). Gibbs and thrml steps are full sweeps, GWG "
        "steps one single-site move, DULA/DMALA steps one all-coordinate move. DULA is "
        "unadjusted (biased). Timings on a shared machine are noisy.\n\n" + "\n\n".join(parts)
    )
    print(body)
    if not args.quick:
        write_section("discrete_samplers", body)


if __name__ == "__main__":
    main()
