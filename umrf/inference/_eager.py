r"""Eager (host numpy) exact inference: no XLA compilation on concrete inputs.

Two engines, both run step by step on numpy arrays (BLAS for the large
contractions), so the first answer on a new structure costs no compile:

* :func:`window_forward` / :func:`window_value_and_grad`: the banded
  block-elimination program of :mod:`umrf.inference._window` on tables
  rescaled by their maxima (probability space), with the exactness guard of
  :mod:`umrf.inference._exact` and a hand-written reverse pass for the
  marginals (``∂ log Z / ∂ θ_f``, two GEMMs per block; on large grids the
  windows are kept every ``√B`` blocks and recomputed per segment).
* :func:`log_space_value_and_grad` and :func:`log_space_map`: plain variable
  elimination in log-space for any plan: sum-product (float64) with its
  reverse pass, and max-product with backtracking.

The guard's error argument is in the :mod:`umrf.inference._exact` docstring;
the quantities it needs (``min``/``max`` of every message, the smallest
positive entry of each small table, read in log-space) are the same as in the
compiled program of :mod:`umrf.inference._scaled`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from umrf.inference._elimination import EliminationPlan
from umrf.inference._window import WindowProgram, block_index, group_index

LN2 = math.log(2.0)


# --- small tables ---------------------------------------------------------------------------
def flatten(thetas: Sequence[np.ndarray]) -> np.ndarray:
    """All factors' log-potentials as one float64 vector, with a trailing 0 (the padding cell)."""
    parts = [t.ravel() for t in thetas]  # numpy arrays (a 0-d table ravels to one entry)
    parts.append(np.zeros(1))
    return np.concatenate(parts).astype(np.float64, copy=False)


class SmallTables(NamedTuple):
    """Per block: ``S_b`` (``(C, M, N)``, max 1), its log-scale and smallest positive entry."""

    tables: list[np.ndarray]  # exp(logS - scale), in the working dtype
    scale: np.ndarray  # (B,) float64, max of logS (0 where logS is all -inf)
    min_log: np.ndarray  # (B,) float64, min over finite logS - scale (0 if none)
    full: list[tuple[np.ndarray, np.ndarray]]  # per group: logS_full (G, *full), logS (G, C, M, N)


class _Unit(NamedTuple):
    """Blocks whose small tables are built by one gather."""

    blocks: np.ndarray
    idx: np.ndarray
    full_shape: tuple[int, ...]
    internal: int
    shape: tuple[int, int, int]


@functools.lru_cache(maxsize=256)
def _units(prog: WindowProgram) -> tuple[_Unit, ...]:
    """One unit for all blocks when their tables share a shape, else one per pattern group."""
    idx_all = block_index(prog)
    if idx_all is not None:
        g = prog.groups[0]
        blocks = np.arange(len(prog.shapes))
        return (_Unit(blocks, idx_all, g.full_shape, g.internal, g.shape),)
    return tuple(
        _Unit(np.asarray(g.blocks), idx, g.full_shape, g.internal, g.shape)
        for g, idx in zip(prog.groups, group_index(prog), strict=True)
    )


def small_tables(prog: WindowProgram, flat: np.ndarray, dtype: Any) -> SmallTables:
    """Build every block's small table ``S_b`` in log-space (float64).

    One gather (of the flat log-potentials) and one sum per unit of
    :func:`_units`: all blocks at once when their tables share a shape.
    """
    num_blocks = len(prog.shapes)
    tables: list[np.ndarray] = [None] * num_blocks  # type: ignore[list-item]
    scale = np.zeros(num_blocks)
    min_log = np.zeros(num_blocks)
    full = []
    for u in _units(prog):
        G = len(u.blocks)
        logS_full = np.sum(flat[u.idx], axis=-1).reshape((G, *u.full_shape))
        logS = _logsumexp_trailing(logS_full, u.internal) if u.internal else logS_full
        logS = np.reshape(logS, (G, *u.shape))
        mx, mn, S = _normalise(logS, dtype)
        for j, b in enumerate(u.blocks):
            tables[b] = S[j]
        scale[u.blocks] = mx
        min_log[u.blocks] = mn
        full.append((logS_full, logS))
    return SmallTables(tables, scale, min_log, full)


def _normalise(logS: np.ndarray, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per table (leading axis): max finite entry, min finite entry minus it, ``exp(· − max)``."""
    flat_s = np.reshape(logS, (logS.shape[0], -1))
    with np.errstate(invalid="ignore"):
        mx = flat_s.max(axis=1)  # -inf for an all-zero table; never +inf
        mn = np.where(np.isfinite(flat_s), flat_s, np.inf).min(axis=1)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    mn = np.where(np.isfinite(mn), mn - mx, 0.0)
    S = np.exp(logS - mx[:, None, None, None]).astype(dtype)
    return mx, mn, S


def _logsumexp_trailing(a: np.ndarray, count: int) -> np.ndarray:
    axes = tuple(range(a.ndim - count, a.ndim))
    m = np.max(a, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - m), axis=axes)) + np.squeeze(m, axes)


# --- the guard ------------------------------------------------------------------------------
def guard_threshold(C: int, e_prev: int, dtype: Any) -> float:
    """``θ_b = C (3 + 2^{max(e_prev, 0)}) tiny / eps`` (see the _exact docstring)."""
    fi = np.finfo(dtype)
    return C * (3.0 + 2.0 ** max(e_prev, 0)) * float(fi.tiny) / float(fi.eps)


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Batched ``a @ b`` (numpy/BLAS), in calls small enough that OpenBLAS keeps one thread.

    OpenBLAS threads a GEMM once ``m·n·k > 2^18``. For the skinny GEMMs of the
    block program (``(2^11 × 16) @ (16 × 16)`` on a 16×16 grid) its threads buy
    little on an idle machine and, when other processes load the cores, their
    busy-waiting made the 16×16 program 20-50× slower (measured on the 2-core
    test machine: 700 ms instead of 30 ms per pass; a fresh process needed 9 s
    instead of 1 s for the first log Z + marginals). Calls between ``2^18`` and
    ``2^24`` are split along the output's longer side (or, for the reverse
    pass's ``(16 × H) @ (H × 16)``, along the contraction) into pieces below the
    threshold; larger GEMMs keep OpenBLAS's threads.
    """
    m, k = a.shape[-2], a.shape[-1]
    n = b.shape[-1]
    work = m * n * k
    if work <= 2**18 or work > 2**24:
        return np.matmul(a, b, out=out)
    pieces = -(-work // 2**18)
    if out is None:
        lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        out = np.empty((*lead, m, n), np.result_type(a, b))
    if max(m, n) >= pieces:  # split the output's longer side
        if m >= n:
            step = -(-m // pieces)
            for i in range(0, m, step):
                np.matmul(a[..., i : i + step, :], b, out=out[..., i : i + step, :])
        else:
            step = -(-n // pieces)
            for j in range(0, n, step):
                np.matmul(a, b[..., :, j : j + step], out=out[..., :, j : j + step])
    else:  # split the contraction and accumulate
        step = -(-k // pieces)
        np.matmul(a[..., :, :step], b[..., :step, :], out=out)
        for i in range(step, k, step):
            out += np.matmul(a[..., :, i : i + step], b[..., i : i + step, :])
    return out


class WindowCache(NamedTuple):
    """What the reverse pass needs: the windows read by the blocks and the scaled ``S``.

    ``windows[b]`` is the window block ``b`` read, for every block (``stride = 1``)
    or only for every ``stride``-th block (checkpoints; the reverse pass
    recomputes the others, one segment at a time).
    """

    windows: dict[int, np.ndarray]
    stride: int
    scaled: list[np.ndarray]
    final: np.ndarray
    small: SmallTables
    flat: np.ndarray


# Above this many bytes of windows, the reverse pass keeps checkpoints every ~√B blocks.
KEEP_ALL_BYTES = 64 * 2**20


def window_forward(
    prog: WindowProgram,
    thetas: Sequence[np.ndarray],
    dtype: Any,
    *,
    guard: bool = True,
    keep: bool = False,
    flat: np.ndarray | None = None,
) -> tuple[float, bool, WindowCache | None]:
    """``(log Z, trusted, cache)`` by the scaled block program on the host.

    ``thetas`` are the factors' log-potential tables (numpy). ``trusted`` is
    the guard's verdict (always True with ``guard=False``).
    """
    if flat is None:
        flat = flatten(thetas)
    small = small_tables(prog, flat, dtype)
    fi = np.finfo(dtype)
    log_tiny2 = math.log(float(fi.tiny)) + LN2
    # Messages live in preallocated buffers (fresh 100 kB+ arrays cost page faults per block):
    # all of them when the reverse pass needs them, else two used in turn.
    sizes = [prog.window_size] + [M * H * N for _, M, H, N in prog.shapes]
    nblocks = len(prog.shapes)
    stride = 1
    if keep and sum(sizes) * np.dtype(dtype).itemsize > KEEP_ALL_BYTES:
        stride = max(1, math.isqrt(nblocks - 1) + 1)
    if keep and stride == 1:
        offsets = np.cumsum([0, *sizes])
        arena = np.empty(int(offsets[-1]), dtype)
        bufs = [arena[offsets[i] : offsets[i + 1]] for i in range(len(sizes))]
    else:
        big_size = max(sizes)
        pair = (np.empty(big_size, dtype), np.empty(big_size, dtype))
        bufs = [pair[i % 2][:sz] for i, sz in enumerate(sizes)]
    msg = bufs[0]
    msg.fill(1.0)
    e_prev = 0
    log_mnpos_prev = 0.0
    exps = 0
    trusted = True
    windows: dict[int, np.ndarray] = {}
    scaled = []
    for b, (C, M, H, N) in enumerate(prog.shapes):
        S = small.tables[b]
        if e_prev:
            S = S * np.asarray(2.0**-e_prev, dtype)
        big = msg.reshape(C, M, H)
        out = bufs[b + 1].reshape(M, H, N)
        gemm(big.transpose(1, 2, 0), S.transpose(1, 0, 2), out=out)
        if keep:
            if b % stride == 0:
                windows[b] = msg if stride == 1 else msg.copy()
            scaled.append(S)
        mx = float(out.max())
        if guard and trusted:
            theta = guard_threshold(C, e_prev, dtype)
            mn = float(out.min())
            if mn < theta:
                mnpos = float(np.min(out, where=out > 0, initial=np.inf))
                lm = small.min_log[b] - e_prev * LN2
                noflush = lm >= log_tiny2 and log_mnpos_prev + lm >= log_tiny2
                if not (mnpos >= theta and noflush):
                    trusted = False
                log_mnpos_prev = math.log(mnpos) if math.isfinite(mnpos) else 0.0
            else:
                log_mnpos_prev = math.log(mn)
        msg = out.reshape(-1)
        if b < nblocks - 1:
            e_prev = math.frexp(mx)[1] if mx > 0 else 0
            exps += e_prev
    total = float(np.sum(msg, dtype=np.float64))
    log_final = math.log(total) if total > 0 else -math.inf
    log_z = float(np.sum(small.scale)) + exps * LN2 + log_final + prog.constant
    for f in prog.scalar_factors:
        log_z += float(thetas[f])
    if math.isnan(log_z):
        trusted = False
    cache = WindowCache(windows, stride, scaled, msg, small, flat) if keep else None
    return log_z, trusted, cache


def window_value_and_grad(
    prog: WindowProgram,
    thetas: Sequence[np.ndarray],
    dtype: Any,
    *,
    guard: bool = True,
) -> tuple[float, list[np.ndarray], bool]:
    """``(log Z, [∂ log Z / ∂ θ_f], trusted)``: forward, then the reverse pass.

    The reverse pass of ``τ' = τ ⊗ S'`` (a batched GEMM) is two GEMMs:
    ``ḡ_τ[c, m, h] = Σ_n ḡ_τ'[m, h, n] S'[c, m, n]`` and
    ``ḡ_S'[c, m, n] = Σ_h τ[c, m, h] ḡ_τ'[m, h, n]``; ``ḡ_{log S} = ḡ_S' ⊙ S'``,
    then back through the log-sum-exp over the block's internal variables to
    each factor's log-potentials. With ``Z = 0`` (trusted), every gradient is
    zero (there is no distribution).
    """
    log_z, trusted, cache = window_forward(prog, thetas, dtype, guard=guard, keep=True)
    assert cache is not None
    gflat = np.zeros(cache.flat.shape)
    if log_z == -math.inf and trusted:
        return log_z, _split(gflat, thetas), True
    total = float(np.sum(cache.final, dtype=np.float64))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        g = np.full(cache.final.shape, 1.0 / total if total > 0 else math.inf, dtype)
        nblocks = len(prog.shapes)
        g_scaled: list[np.ndarray] = [None] * nblocks  # type: ignore[list-item]
        big_size = max([prog.window_size] + [M * H * N for _, M, H, N in prog.shapes])
        g_pair = (np.empty(big_size, dtype), np.empty(big_size, dtype))
        stride = cache.stride
        seg_bufs = [np.empty(big_size, dtype) for _ in range(stride - 1)] if stride > 1 else []
        for start in range(((nblocks - 1) // stride) * stride, -1, -stride):
            stop = min(start + stride, nblocks)
            if stride == 1:
                seg = {start: cache.windows[start]}
            else:  # recompute this segment's windows from its checkpoint
                seg = {start: cache.windows[start]}
                for b in range(start, stop - 1):
                    C, M, H, N = prog.shapes[b]
                    out = seg_bufs[b - start][: M * H * N].reshape(M, H, N)
                    w = seg[b].reshape(C, M, H)
                    gemm(w.transpose(1, 2, 0), cache.scaled[b].transpose(1, 0, 2), out=out)
                    seg[b + 1] = out.reshape(-1)
            for b in range(stop - 1, start - 1, -1):
                C, M, H, N = prog.shapes[b]
                g_out = g.reshape(M, H, N)
                big = seg[b].reshape(C, M, H)
                S = cache.scaled[b]
                g_scaled[b] = gemm(big.transpose(1, 0, 2), g_out).transpose(1, 0, 2)
                if b:
                    buf = g_pair[b % 2][: C * M * H].reshape(C, M, H)
                    gemm(
                        S.transpose(1, 0, 2), g_out.transpose(0, 2, 1), out=buf.transpose(1, 0, 2)
                    )
                    g = buf.reshape(-1)
        for gi, u in enumerate(_units(prog)):
            logS_full, logS = cache.small.full[gi]
            G = len(u.blocks)
            idx = u.idx
            # d/d logS of S' = exp(logS - scale) 2^-e is the product with S' itself.
            gl = np.stack([g_scaled[b] * cache.scaled[b] for b in u.blocks]).astype(np.float64)
            n_int = u.internal
            if n_int:
                lse = np.reshape(logS, (G, *u.full_shape[: len(u.full_shape) - n_int]))
                tail = (...,) + (None,) * n_int
                w = np.exp(logS_full - lse[tail])
                w = np.where(np.isfinite(lse)[tail], w, 0.0)
                gfull = np.reshape(gl, lse.shape)[tail] * w
            else:
                gfull = gl
            # every slot of a cell receives the cell's gradient (the slots were summed)
            weights = np.broadcast_to(np.reshape(gfull, (G, -1, 1)), idx.shape)
            gflat += np.bincount(idx.ravel(), weights=weights.ravel(), minlength=gflat.size)
    grads = _split(gflat, thetas)
    for f in prog.scalar_factors:  # ∂ log Z / ∂ θ = 1 for a constant factor
        grads[f] = np.ones(np.shape(thetas[f]))
    if guard and not np.all(np.isfinite(gflat[:-1])):
        trusted = False
    return log_z, grads, trusted


def _split(gflat: np.ndarray, thetas) -> list[np.ndarray]:
    """The per-factor views of a flat gradient."""
    out, off = [], 0
    for t in thetas:
        shape = np.shape(t)
        size = math.prod(shape)
        out.append(gflat[off : off + size].reshape(shape))
        off += size
    return out


# --- log-space variable elimination (any plan) ----------------------------------------------
def _aligned(table: np.ndarray, align: tuple[tuple[int, ...], tuple[int, ...]]) -> np.ndarray:
    perm, shape = align
    t = np.transpose(table, perm) if list(perm) != list(range(len(perm))) else table
    return np.reshape(t, shape)


def _union(plan_step, tables: dict[int, np.ndarray]) -> np.ndarray:
    U = None
    for t, al in zip(plan_step.inputs, plan_step.aligns, strict=True):
        a = _aligned(tables[t], al)
        U = a if U is None else U + a
    return U


def log_space_value_and_grad(
    plan: EliminationPlan,
    cards: Sequence[int],
    thetas: Sequence[np.ndarray],
    *,
    grad: bool = True,
) -> tuple[float, list[np.ndarray] | None]:
    """``(log Z, [∂ log Z / ∂ θ_f])`` by log-space elimination in float64 (exact, eager).

    The reverse pass of ``τ = logsumexp_v U`` with ``U = Σ_i t_i`` sends
    ``ḡ_out · softmax_v(U)`` to every input (summed over its missing axes).
    """
    num_factors = len(thetas)
    tables: dict[int, np.ndarray] = {k: np.asarray(t, np.float64) for k, t in enumerate(thetas)}
    steps = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for st in plan.steps:
            if not st.inputs:
                tables[st.output] = np.asarray(math.log(cards[st.variable]))
                steps.append(None)
                continue
            U = _union(st, tables)
            m = np.max(U, axis=-1, keepdims=True)
            m = np.where(np.isfinite(m), m, 0.0)
            s = np.sum(np.exp(U - m), axis=-1)
            out = np.log(s) + m[..., 0]
            tables[st.output] = out
            steps.append(U if grad else None)
        log_z = float(sum(float(tables[t]) for t in plan.remaining))
        if not grad:
            return log_z, None
        gbar: dict[int, Any] = {t: 1.0 for t in plan.remaining}
        if log_z == -math.inf:
            return log_z, [np.zeros(np.shape(t)) for t in thetas]
        for st, U in zip(reversed(plan.steps), reversed(steps), strict=True):
            if U is None:
                continue
            g_out = gbar.pop(st.output, None)
            if g_out is None:
                continue
            out = tables[st.output]
            w = np.exp(U - np.where(np.isfinite(out), out, 0.0)[..., None])
            w = np.where(np.isfinite(out)[..., None], w, 0.0)
            gU = np.asarray(g_out)[..., None] * w
            for t, (perm, shape) in zip(st.inputs, st.aligns, strict=True):
                red = np.sum(
                    gU, axis=tuple(a for a, d in enumerate(shape) if d == 1), keepdims=True
                )
                red = np.reshape(red, tuple(np.shape(tables[t])[p] for p in perm))
                if list(perm) != list(range(len(perm))):
                    red = np.transpose(red, np.argsort(perm))
                gbar[t] = red if t not in gbar else gbar[t] + red
    grads = []
    for f in range(num_factors):
        gf = gbar.get(f)
        shape = np.shape(thetas[f])
        grads.append(
            np.zeros(shape) if gf is None else np.broadcast_to(gf, shape).astype(np.float64)
        )
    return log_z, grads


def log_space_map(
    plan: EliminationPlan,
    cards: Sequence[int],
    thetas: Sequence[np.ndarray],
    dtype: Any = np.float32,
) -> np.ndarray:
    """A most probable configuration by max-plus elimination and backtracking (eager).

    Max-plus needs no rescaling (sums of log-potentials, ``−inf`` for hard
    zeros), so it runs in the tables' precision. Ties go to the smallest state;
    a variable in no factor gets state 0.
    """
    n = len(cards)
    tables: dict[int, np.ndarray] = {k: np.asarray(t, dtype) for k, t in enumerate(thetas)}
    args = []
    for st in plan.steps:
        if not st.inputs:
            tables[st.output] = np.asarray(0.0, dtype)
            args.append(None)
            continue
        U = np.broadcast_to(_union(st, tables), tuple(cards[u] for u in st.union))
        for t in st.inputs:
            del tables[t]
        best = np.array(U[..., 0])
        arg = np.zeros(best.shape, np.int8 if cards[st.variable] <= 127 else np.int32)
        for j in range(1, cards[st.variable]):
            better = U[..., j] > best  # strict: ties keep the smaller state
            np.maximum(best, U[..., j], out=best)
            arg[better] = j
        tables[st.output] = best
        args.append(arg)
    x = np.zeros(n, np.int32)
    for st, arg in zip(reversed(plan.steps), reversed(args), strict=True):
        if arg is None:
            continue
        idx = tuple(int(x[u]) for u in st.union[:-1])
        x[st.variable] = arg[idx]
    return x
