"""Linear-chain CRF log-likelihood + Viterbi: umrf vs pytorch-crf vs torch-struct (CPU).

Same work for every library: a batch of B sequences of length L with K
labels, full masks, the same emissions / transitions / start / end scores;
one "call" = per-sequence log-likelihood of given tags + Viterbi decoding
of the batch. umrf's time is split into the first call (trace + compile +
run) and the steady-state run time; the torch peers run eagerly (no
compilation) under ``torch.no_grad`` (torch-struct's argmax needs autograd
and runs with gradients enabled). Results are checked to agree before
timing. Also: grid-CRF mean field, time per iteration on 256 × 256 images
with 21 labels (radius-2 window, Potts, spatial + bilateral kernels).

    .venv/bin/python benchmarks/crf_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, time_jax, time_python, write_section  # noqa: E402

import umrf  # noqa: E402
from umrf.crf import GridKernels, grid_mean_field, potts_compatibility  # noqa: E402
from umrf.crf._forward import log_partition_guarded  # noqa: E402


def make_problem(B, L, K, seed=0):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(B, L, K)).astype(np.float32)
    A = (0.5 * rng.normal(size=(K, K))).astype(np.float32)
    s = rng.normal(size=K).astype(np.float32)
    f = rng.normal(size=K).astype(np.float32)
    tags = rng.integers(0, K, size=(B, L)).astype(np.int32)
    return e, A, s, f, tags


# "auto" (the default) first: the ratio column is relative to it.
METHODS = ("auto", "sequential", "scaled")


def umrf_fn(method):
    def fn(e, A, tags, s, f):
        mask = jnp.ones(e.shape[:2], bool)
        ll = jax.vmap(
            lambda e_, y_, m_: umrf.crf.chain_log_likelihood(
                e_, A, y_, m_, start=s, end=f, method=method
            )
        )(e, tags, mask)
        path, _ = jax.vmap(lambda e_, m_: umrf.crf.viterbi(e_, A, m_, start=s, end=f))(e, mask)
        return ll, path

    return jax.jit(fn)


def pytorch_crf_layer(A, s, f):
    """A ``torchcrf.CRF`` holding umrf's transitions, start and end scores."""
    import torch
    from torchcrf import CRF

    crf = CRF(A.shape[0], batch_first=True)
    with torch.no_grad():
        crf.transitions.copy_(torch.from_numpy(A))
        crf.start_transitions.copy_(torch.from_numpy(s))
        crf.end_transitions.copy_(torch.from_numpy(f))
    return crf


def pytorch_crf_runner(e, A, s, f, tags):
    import torch

    B, L, K = e.shape
    crf = pytorch_crf_layer(A, s, f)
    em, tg = torch.from_numpy(e), torch.from_numpy(tags).long()
    mask = torch.ones(B, L, dtype=torch.bool)

    def run():
        with torch.no_grad():
            ll = crf(em, tg, mask, reduction="none")
            path = crf.decode(em, mask)
        return ll.numpy(), np.asarray(path)

    return run


def torch_struct_runner(e, A, s, f, tags):
    import torch
    from torch_struct import LinearChainCRF

    B, L, K = e.shape
    em, At = torch.from_numpy(e), torch.from_numpy(A)
    st, en = torch.from_numpy(s), torch.from_numpy(f)
    lengths = torch.full((B,), L, dtype=torch.long)
    gold = torch.from_numpy(tags).long()

    def potentials():
        # torch-struct's edge n scores (z_{n+1} = j, z_n = i) as log_potentials[b, n, j, i].
        pot = At.T[None, None] + em[:, 1:, :, None]
        first = (st + em[:, 0])[:, None, :]
        pot = torch.cat([pot[:, :1] + first[:, None], pot[:, 1:]], dim=1)
        last = torch.zeros(L - 1, K)
        last[-1] = en
        return pot + last[None, :, :, None]

    def run():
        pot = potentials().requires_grad_(True)
        dist = LinearChainCRF(pot, lengths=lengths)
        parts = LinearChainCRF.struct.to_parts(gold, K, lengths=lengths).type_as(pot)
        ll = dist.log_prob(parts)
        path, _ = LinearChainCRF.struct.from_parts(dist.argmax.detach())
        return ll.detach().numpy(), path.numpy()

    return run


def bench_chain(B, L, K, repeats, peers):
    e, A, s, f, tags = make_problem(B, L, K)
    rows, out = [], {}
    for method in METHODS:
        fn = umrf_fn(method)
        first, run, (ll, path) = time_jax(fn, e, A, tags, s, f, repeats=repeats)
        out[method] = (first, run, np.asarray(ll), np.asarray(path))
    ref_ll, ref_path = out["sequential"][2], out["sequential"][3]
    trusted = jax.vmap(
        lambda e_: log_partition_guarded(e_, A, np.ones(L, bool), s, f)[1], in_axes=0
    )(e)
    if not bool(np.all(trusted)):
        raise AssertionError("the auto method's guard tripped; its timing would include fallback")
    for method in METHODS:
        np.testing.assert_allclose(out[method][2], ref_ll, rtol=1e-4)
    base = out["auto"][1]
    for method in METHODS:
        first, run = out[method][:2]
        rows.append([f"umrf ({method})", first, run * 1e3, run / base])
    for name, make in peers:
        try:
            runner = make(e, A, s, f, tags)
            t0 = time.perf_counter()
            ll, path = runner()
            first = time.perf_counter() - t0
            np.testing.assert_allclose(ll, ref_ll, rtol=2e-4, atol=2e-3)
            agree = np.mean(path == ref_path)
            if agree < 0.999:
                raise AssertionError(f"Viterbi paths agree on only {agree:.3%} of positions")
            run, _ = time_python(runner, repeats=max(1, repeats // 2), warmup=0)
            rows.append([name, first, run * 1e3, run / base])
        except Exception as exc:  # noqa: BLE001 - report the peer's failure honestly
            rows.append([name, f"failed: {type(exc).__name__}: {exc}"[:120], "-", "-"])
    return rows


def bench_training(B, L, K, repeats):
    """Mean NLL and its gradient w.r.t. emissions and transitions (one training step's CRF work)."""
    e, A, s, f, tags = make_problem(B, L, K)
    rows, grads = [], {}
    for method in METHODS:

        def loss(e, A, method=method):
            return umrf.losses.crf_negative_log_likelihood(
                e, A, tags, None, start=s, end=f, method=method
            )

        fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        first, run, (value, g) = time_jax(fn, e, A, repeats=repeats)
        grads[method] = (float(value), np.asarray(g[0]), np.asarray(g[1]))
        rows.append([f"umrf ({method})", first, run * 1e3])
    ref = grads["sequential"]
    for method in METHODS:
        np.testing.assert_allclose(grads[method][1], ref[1], atol=1e-5)
        np.testing.assert_allclose(grads[method][2], ref[2], rtol=1e-4, atol=1e-5)
    try:
        import torch

        crf = pytorch_crf_layer(A, s, f)
        em = torch.from_numpy(e).requires_grad_(True)
        tg = torch.from_numpy(tags).long()

        def run_torch():
            crf.zero_grad()
            em.grad = None
            value = -crf(em, tg, reduction="mean")
            value.backward()
            return float(value.detach()), em.grad.numpy(), crf.transitions.grad.numpy()

        t0 = time.perf_counter()
        value, ge, ga = run_torch()
        first = time.perf_counter() - t0
        np.testing.assert_allclose(value, ref[0], rtol=1e-4)
        np.testing.assert_allclose(ge, ref[1], atol=1e-5)
        np.testing.assert_allclose(ga, ref[2], rtol=1e-3, atol=1e-4)
        run, _ = time_python(run_torch, repeats=max(1, repeats // 2), warmup=0)
        rows.append(["pytorch-crf (torchcrf.CRF, autograd)", first, run * 1e3])
    except Exception as exc:  # noqa: BLE001 - report the peer's failure honestly
        rows.append(["pytorch-crf", f"failed: {type(exc).__name__}: {exc}"[:120], "-"])
    base = rows[0][2]
    return [r + [r[2] / base if isinstance(r[2], float) else "-"] for r in rows]


def bench_mean_field(B, size, C, iters, repeats):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(B, size, size, C)).astype(np.float32)
    img = rng.uniform(size=(B, size, size, 3)).astype(np.float32)
    mu = potts_compatibility(C)
    k = GridKernels(*(jnp.asarray(v, jnp.float32) for v in GridKernels()))
    rows = []
    for radius in (1, 2):
        fn = jax.jit(
            lambda z, img, mu, k, r=radius: grid_mean_field(
                z, mu, k, img, num_iters=iters, radius=r
            )
        )
        first, run, _ = time_jax(fn, z, img, mu, k, repeats=repeats)
        rows.append([B, f"{size}x{size}", C, radius, iters, first, run / iters * 1e3])
    return rows


def main(argv=None):
    warnings.filterwarnings("ignore", message=".*arg_constraints.*")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    args = parser.parse_args(argv)
    peers = [("pytorch-crf (torchcrf.CRF)", pytorch_crf_runner)]
    peers.append(("torch-struct (LinearChainCRF)", torch_struct_runner))
    configs = [(64, 100, 20)] if args.quick else [(64, 100, 20), (64, 1000, 20)]
    repeats = 2 if args.quick else 5
    headers = ["library", "first call s (compile+run)", "run ms", "time ÷ umrf (auto) time"]
    text = []
    for B, L, K in configs:
        rows = bench_chain(B, L, K, repeats, peers)
        text.append(f"### Log-likelihood + Viterbi, batch {B} × length {L} × {K} labels\n")
        text.append(table(rows, headers) + "\n")
        print(text[-2] + text[-1])
    B, L, K = configs[0]
    train_rows = bench_training(B, L, K, repeats)
    text.append(
        f"### Training step's CRF work: mean NLL + gradient, batch {B} × length {L} × {K} labels\n"
    )
    train_headers = ["library", "first call s", "run ms", "time ÷ umrf (auto)"]
    text.append(table(train_rows, train_headers) + "\n")
    print(text[-2] + text[-1])
    mf_rows = bench_mean_field(1, 64 if args.quick else 256, 21, 5, repeats)
    if not args.quick:
        mf_rows += bench_mean_field(4, 256, 21, 5, 3)
    mf_headers = ["batch", "image", "labels", "radius", "iters", "first call s", "ms / iteration"]
    text.append("### Grid CRF mean field (umrf.crf.grid_mean_field), time per iteration\n")
    text.append(table(mf_rows, mf_headers) + "\n")
    print(text[-2] + text[-1])
    notes = (
        "`time ÷ umrf` = the row's run time / umrf (auto) run time, so > 1 means umrf "
        "with its default method is that many times faster. umrf `auto` (the default) is "
        "the probability-space forward algorithm with an exactness guard that falls back to "
        "the log-space recursion when it cannot vouch for the result (it did not trip on "
        "these scores); `sequential` is the plain log-space forward algorithm (K² "
        "exponentials per step); `scaled` is the unguarded probability-space forward "
        "(opt-in, exact only within the float exponent range). All three agree to 1e-4 "
        "relative here. Viterbi is the sequential max-plus recursion in every umrf row. "
        "Peers run eagerly on the same CPU threads "
        f"(torch threads = {_torch_threads()}). Timings on a shared machine are noisy; "
        "rerun on a quiet one.\n\nCommand: `.venv/bin/python benchmarks/crf_throughput.py"
        + (" --quick`" if args.quick else "`")
    )
    write_section("crf_throughput", "\n".join(text) + "\n" + notes)


def _torch_threads():
    try:
        import torch

        return torch.get_num_threads()
    except Exception:  # noqa: BLE001
        return "n/a"


if __name__ == "__main__":
    main()
