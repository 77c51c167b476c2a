r"""The compiled scaled engine: the window program as one ``lax.scan`` of batched GEMMs.

The block program of :mod:`umrf.inference._window` (every block of the same
shape) runs as one ``lax.scan`` whose body is one ``dot_general``
(``τ[m, h, n] = Σ_c τ[c, m, h] S[c, m, n]``) and one fused ``min``/``max``
reduction for the guard; the small tables ``S_b`` of all blocks are built
before the loop in log-space, by one gather from the flat vector of all
log-potentials and one sum. Compile time is that of one loop body and a few
small ops, whatever the number of blocks or factors (the inputs and the
gradient are one flat vector each).

:func:`auto_functions` returns the jitted ``method="auto"`` functions of a
structure (cached): the guarded scaled program; where the guard trips, the
exact eager engine of :mod:`umrf.inference._eager` answers through a host
callback (``jax.pure_callback``: nothing more to compile), decided once per
batch under ``jax.vmap`` (as in :mod:`umrf.crf._forward`); first derivatives
are reverse mode through the guarded program, second and higher ones come
from the compiled log-space program of :mod:`umrf.inference._program`
(compiled only when asked for). :func:`scaled_functions` is the guard-less
program (``method="scaled"``).
The error argument is in the :mod:`umrf.inference._exact` docstring.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf.inference._window import WindowProgram

LN2 = math.log(2.0)


def _logsumexp_trailing(a: jax.Array, count: int) -> jax.Array:
    axes = tuple(range(a.ndim - count, a.ndim))
    m = jnp.max(a, axis=axes, keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m)))
    s = jnp.sum(jnp.exp(a - m), axis=axes)
    live = s > 0
    out = jnp.log(jnp.where(live, s, jnp.ones_like(s))) + jnp.squeeze(m, axes)
    return jnp.where(live, out, -jnp.inf)


class FlatLayout(NamedTuple):
    """Where each factor's flattened table lives in the flat vector of all log-potentials."""

    offsets: tuple[int, ...]
    shapes: tuple[tuple[int, ...], ...]
    size: int


def flat_layout(shapes: tuple[tuple[int, ...], ...]) -> FlatLayout:
    """The layout of ``concatenate([t.ravel() for t in tables])`` for tables of ``shapes``."""
    offsets, off = [], 0
    for sh in shapes:
        offsets.append(off)
        off += math.prod(sh)
    return FlatLayout(tuple(offsets), tuple(shapes), off)


def flatten_tables(tables, dtype) -> jax.Array:
    """All log-potential tables as one flat vector (factor order, C order within a table).

    Concatenated 32 tables at a time behind an optimisation barrier: XLA:CPU
    otherwise fuses one concatenate of hundreds of operands into its consumer
    and compiles that fusion slowly (16×16 grid, 736 tables: ``jit`` of log Z
    compiled in 6.1-6.7 s plainly, 3.2-3.5 s chunked; measured on the loaded
    2-core test machine).
    """
    if not tables:
        return jnp.zeros((0,), dtype)
    flat = [jnp.reshape(jnp.asarray(t, dtype), (-1,)) for t in tables]
    if len(flat) <= 32:
        return jnp.concatenate(flat)
    parts = [jnp.concatenate(flat[i : i + 32]) for i in range(0, len(flat), 32)]
    return jnp.concatenate(jax.lax.optimization_barrier(parts))


def unflatten(flat: jax.Array, layout: FlatLayout) -> tuple[jax.Array, ...]:
    """The tables of ``flat``: dynamic slices (one compiled kernel per table size, op by op)."""
    out = []
    for off, sh in zip(layout.offsets, layout.shapes, strict=True):
        size = math.prod(sh)
        out.append(jnp.reshape(jax.lax.dynamic_slice_in_dim(flat, off, size), sh))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _small_table_index(prog: WindowProgram, layout: FlatLayout) -> np.ndarray:
    """``idx[b, p, s]``: where slot ``s``'s entry for cell ``p`` of block ``b``'s table lives.

    Unused slots point at ``layout.size`` (a zero appended to the flat vector).
    Every block of a uniform program has the same ``S_full`` shape.
    """
    full_shape = prog.groups[0].full_shape
    P = math.prod(full_shape)
    slots = max(len(g.factors) for g in prog.groups)
    idx = np.full((len(prog.shapes), P, max(slots, 1)), layout.size, np.int32)
    coords = np.indices(full_shape).reshape(len(full_shape), P)
    for g in prog.groups:
        for j, (fs, axes) in enumerate(zip(g.factors, g.axes, strict=True)):
            shape = layout.shapes[fs[0]]
            local = np.zeros(P, np.int64)
            for a, d in zip(axes, shape, strict=True):
                local = local * d + coords[a]
            offsets = np.asarray([layout.offsets[f] for f in fs], np.int64)
            idx[np.asarray(g.blocks), :, j] = offsets[:, None] + local[None, :]
    return idx


def small_tables(prog: WindowProgram, flat: jax.Array, layout: FlatLayout):
    """``(S (B, C, M, N), scale (B,), min_log (B,))``: every block's small table, log-built.

    One gather reads, for every block and every cell of its table, the
    log-potentials of the factors the block consumes, and one sum adds them
    (a compile cost of a few ops, whatever the number of factors); the
    log-sum-exp over a block's internal variables follows.
    """
    g0 = prog.groups[0]
    B = len(prog.shapes)
    idx = _small_table_index(prog, layout)
    ext = jnp.concatenate([flat, jnp.zeros((1,), flat.dtype)])
    full = jnp.sum(ext.at[idx].get(mode="promise_in_bounds"), axis=-1)
    full = jnp.reshape(full, (B, *g0.full_shape))
    logS = _logsumexp_trailing(full, g0.internal) if g0.internal else full
    logS = jnp.reshape(logS, (B, *g0.shape))
    flat_s = jnp.reshape(logS, (B, -1))
    finite = jnp.isfinite(flat_s)
    mx = jnp.max(jnp.where(finite, flat_s, -jnp.inf), axis=1)
    mx = jax.lax.stop_gradient(jnp.where(jnp.isfinite(mx), mx, jnp.zeros_like(mx)))
    mn = jnp.min(jnp.where(finite, flat_s, jnp.inf), axis=1) - mx
    mn = jax.lax.stop_gradient(jnp.where(jnp.isfinite(mn), mn, jnp.zeros_like(mn)))
    S = jnp.exp(logS - mx[:, None, None, None])
    return S, mx, mn


def scaled_log_partition(
    prog: WindowProgram, flat: jax.Array, layout: FlatLayout, *, guard: bool
) -> tuple[jax.Array, jax.Array]:
    """``(log Z, trusted)`` of the scaled block program (``trusted`` True without the guard).

    ``flat`` holds every factor's log-potentials (see :func:`flatten_tables`).
    """
    dtype = flat.dtype
    fi = jnp.finfo(dtype)
    tiny, eps = float(fi.tiny), float(fi.eps)
    log_tiny2 = math.log(tiny) + LN2
    total = jnp.asarray(prog.constant, dtype)
    for f in prog.scalar_factors:
        total = total + flat[layout.offsets[f]]
    if not prog.shapes:
        final = jnp.ones((prog.final_size,), dtype)
        return total + jnp.log(jnp.sum(final)), jnp.asarray(True)
    C, M, H, N = prog.shapes[0]
    S, scale, min_log = small_tables(prog, flat, layout)

    def body(carry, xs):
        msg, e_prev, log_mnpos_prev, trusted = carry
        S_b, min_log_b = xs
        S2 = S_b * jnp.exp2(-e_prev.astype(dtype))
        out = jnp.einsum(
            "cmh,cmn->mhn",
            jnp.reshape(msg, (C, M, H)),
            S2,
            precision=jax.lax.Precision.HIGHEST,
        )
        stat = jax.lax.stop_gradient(out)
        mx = jnp.max(stat)
        e = jnp.where(mx > 0, jnp.frexp(mx)[1], 0).astype(jnp.int32)
        if guard:
            mn = jnp.min(stat)
            mnpos = jnp.min(jnp.where(stat > 0, stat, jnp.inf))
            theta = C * (3.0 + jnp.exp2(jnp.maximum(e_prev, 0).astype(dtype))) * (tiny / eps)
            lm = min_log_b - e_prev.astype(dtype) * LN2
            noflush = (lm >= log_tiny2) & (log_mnpos_prev + lm >= log_tiny2)
            ok = (mn >= theta) | ((mnpos >= theta) & noflush)
            trusted = trusted & ok
            log_mnpos_prev = jnp.where(jnp.isfinite(mnpos), jnp.log(mnpos), jnp.zeros_like(mnpos))
        return (jnp.reshape(out, (-1,)), e, log_mnpos_prev, trusted), e

    init = (
        jnp.ones((C * M * H,), dtype),
        jnp.zeros((), jnp.int32),
        jnp.zeros((), dtype),
        jnp.asarray(True),
    )
    (final, _, _, trusted), es = jax.lax.scan(body, init, (S, min_log.astype(dtype)))
    shifts = jnp.sum(scale) + LN2 * jnp.sum(es[:-1]).astype(dtype)
    s = jnp.sum(final)
    live = s > 0
    log_final = jnp.where(live, jnp.log(jnp.where(live, s, jnp.ones_like(s))), -jnp.inf)
    log_z = (total + shifts.astype(dtype) + log_final).astype(dtype)
    return log_z, trusted


def _guarded(fast: Callable, exact: Callable) -> Callable:
    """``fast(*args) -> (out, trusted)``, with ``exact(*args) -> out`` where not trusted.

    Alone: ``lax.cond`` on ``trusted``. Under ``jax.vmap`` (a ``custom_vmap``
    rule) the fast pass runs on the whole batch and the exact pass only if some
    member is not trusted (then only its rows are used), instead of the
    ``select`` of both branches that batching a ``lax.cond`` would give. The
    same construction as :mod:`umrf.crf._forward`.
    """

    @jax.custom_batching.custom_vmap
    def run(*args):
        out, trusted = fast(*args)
        return jax.lax.cond(trusted, lambda: out, lambda: exact(*args))

    @run.def_vmap
    def run_batched(axis_size, in_batched, *args):
        del axis_size
        axes = tuple(0 if b else None for b in in_batched)
        out, trusted = jax.vmap(fast, in_axes=axes)(*args)

        def with_fallback():
            ref = jax.vmap(exact, in_axes=axes)(*args)

            def pick(a, b):
                return jnp.where(trusted.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

            return jax.tree_util.tree_map(pick, out, ref)

        res = jax.lax.cond(jnp.all(trusted), lambda: out, with_fallback)
        return res, jax.tree_util.tree_map(lambda _: True, res)

    return run


@functools.lru_cache(maxsize=256)
def auto_functions(
    prog: WindowProgram, layout: FlatLayout, host_exact: Callable, exact: Callable
) -> tuple[Callable, Callable]:
    """Jitted ``(log_partition(flat), value_and_grad(flat))`` of ``method="auto"`` for ``prog``.

    ``host_exact(flat_numpy, grad) -> (log Z, flat gradient or None)`` is the
    exact eager engine, called back on the host when the guard trips (so the
    fallback adds nothing to compile); ``exact(flat) -> log Z`` is the compiled
    log-space program, used only for second and higher derivatives.
    """

    def fast(flat):
        return scaled_log_partition(prog, flat, layout, guard=True)

    def fast_vg(flat):
        (log_z, trusted), g = jax.value_and_grad(fast, has_aux=True)(flat)
        ok = trusted & jnp.isfinite(log_z) & jnp.all(jnp.isfinite(g))
        return (log_z, g), ok

    def callback(grad: bool, batched: bool):
        def call(flat):
            dtype = flat.dtype
            lead = flat.shape[:1] if batched else ()
            shapes = (jax.ShapeDtypeStruct(lead, dtype),)
            if grad:
                shapes += (jax.ShapeDtypeStruct(flat.shape, dtype),)

            def host(x):
                x = np.asarray(x)
                rows = x if batched else x[None]
                res = [host_exact(np.asarray(r, np.float64), grad) for r in rows]
                zs = np.asarray([r[0] for r in res], dtype)
                out = (zs if batched else zs[0],)
                if grad:
                    gs = np.stack([np.asarray(r[1], dtype) for r in res])
                    out += (gs if batched else gs[0],)
                return out

            # "sequential": an outer vmap (a batch of batches) loops over this callback.
            out = jax.pure_callback(host, shapes, flat, vmap_method="sequential")
            return out if grad else out[0]

        return call

    def guarded(fast_fn, grad):
        exact_one = callback(grad, batched=False)
        exact_many = callback(grad, batched=True)

        def pack(out):
            return out if not grad else (out[0], out[1])

        @jax.custom_batching.custom_vmap
        def run(flat):
            out, trusted = fast_fn(flat)
            return jax.lax.cond(trusted, lambda: pack(out), lambda: pack(exact_one(flat)))

        @run.def_vmap
        def run_batched(axis_size, in_batched, flat):
            del axis_size
            if not in_batched[0]:
                res = run(flat)
                return res, jax.tree_util.tree_map(lambda _: False, res)
            out, trusted = jax.vmap(fast_fn)(flat)
            out = pack(out)

            def with_fallback():
                ref = pack(exact_many(flat))

                def pick(a, b):
                    return jnp.where(trusted.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

                return jax.tree_util.tree_map(pick, out, ref)

            # One decision for the whole batch: an all-clear batch skips the host fallback.
            res = jax.lax.cond(jnp.all(trusted), lambda: out, with_fallback)
            return res, jax.tree_util.tree_map(lambda _: True, res)

        return run

    lp_fast_or_exact = guarded(fast, grad=False)
    vg_fast_or_exact = guarded(fast_vg, grad=True)
    exact_vg = jax.value_and_grad(exact)

    @jax.custom_jvp
    def value_and_grad(flat):
        return vg_fast_or_exact(flat)

    @value_and_grad.defjvp
    def _vg_jvp(primals, tangents):
        # Second and higher derivatives come from the log-space program.
        return jax.jvp(exact_vg, primals, tangents)

    @jax.custom_jvp
    def log_partition(flat):
        return lp_fast_or_exact(flat)

    @log_partition.defjvp
    def _lp_jvp(primals, tangents):
        log_z, g = value_and_grad(*primals)
        return log_z, jnp.sum(g * tangents[0])

    return jax.jit(log_partition), jax.jit(value_and_grad)


@functools.lru_cache(maxsize=256)
def scaled_functions(prog: WindowProgram, layout: FlatLayout) -> tuple[Callable, Callable]:
    """Jitted guard-less ``(log_partition(flat), value_and_grad(flat))`` (``method="scaled"``)."""

    def run(flat):
        return scaled_log_partition(prog, flat, layout, guard=False)[0]

    return jax.jit(run), jax.jit(jax.value_and_grad(run))
