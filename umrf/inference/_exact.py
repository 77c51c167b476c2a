r"""Exact inference on a ``DiscreteMRF``: guarded probability-space elimination, log fallback.

For ``p(x) = (1/Z) Π_k ψ_k(x_{C_k})`` with log-potentials ``θ_k = log ψ_k``:

* ``log_partition``: ``log Z = log Σ_x exp(Σ_k θ_k(x_{C_k}))`` by variable
  elimination (Zhang & Poole, 1994; Dechter, 1999).
* ``marginals``: ``∂ log Z / ∂ θ_k(c) = p(x_{C_k} = c)`` (the exponential-family
  identity; Wainwright & Jordan, 2008, Prop. 3.1), so one reverse pass through
  the elimination gives every factor marginal (cost: two GEMMs per block, about
  twice the forward pass); variable marginals are sums of a factor marginal.
* ``map_assignment``: max-product elimination with backtracking (Dechter,
  1999; Koller & Friedman, 2009, §13.2), in log-space (max-plus needs no
  rescaling).

Engines (``method=``)
---------------------
``"log"``: the log-space engine of :mod:`umrf.inference._program` (one jitted
program of a few ``lax.scan`` loops; every step a max-shifted log-sum-exp). It
is exact with hard zeros and never overflows, but it is gather-bound.

``"scaled"``: the banded block program of :mod:`umrf.inference._window` in
probability space: tables rescaled by their maxima (powers of two), log-scales
carried separately, ``k`` eliminations per batched GEMM (BLAS). No guard:
it silently loses mass where rescaling flushed entries that matter (kept for
the tests that show it).

``"auto"`` (default): the scaled program with the exactness guard below; where
the guard cannot vouch for the result, the log-space engine is used. On
concrete inputs (not under ``jit``/``grad``/``vmap``) everything runs eagerly on
the host in numpy (:mod:`umrf.inference._eager`): no XLA compilation, float32
first, then float64 if the guard trips, then eager log-space float64
elimination. Under tracing it is one compiled ``lax.scan``
(:mod:`umrf.inference._scaled`); where its guard trips, the exact eager engine
answers through a host callback, decided once per batch under ``jax.vmap`` (as
in :mod:`umrf.crf._forward`); first derivatives are reverse mode through the
guarded program, second and higher ones come from the log-space engine.
A structure whose best order is not banded (its window table would exceed
``max(4 × the plan's largest table, 2^12)`` entries), or whose blocks differ in
shape (mixed cardinalities) when compiled, uses the log-space engine.

The guard's error argument
--------------------------
Each block computes ``out[m, h, n] = Σ_c τ[c, m, h] S'[c, m, n]`` with a message
``τ ≥ 0`` whose maximum is below ``2^e`` (``e`` the exponent of the previous
block's maximum), ``S' = S · 2^{−e}`` and ``S = exp(log S − max log S) ≤ 1``, where
``log S`` is summed (and reduced over the block's internal variables) in
log-space. Let ``tiny`` be the smallest normal float and ``ε`` the machine
epsilon.

1. An entry that is structurally zero (each of its terms contains a
   ``θ = −inf``) is computed as an exact ``0``.
2. Every other term ``τ(x) S'(y)`` is computed to relative error ``ε`` unless
   something underflows; underflow loses at most ``tiny`` in ``S`` (its
   ``exp``), ``2^{max(e,0)} tiny`` in the rescaling by ``2^{−e}``, ``tiny`` in the
   product, and ``C · tiny`` in the ``C``-term sum: in all at most
   ``δ_b = C (3 + 2^{max(e,0)}) tiny`` per output entry.
3. Hence an entry ``≥ θ_b = δ_b / ε`` is correct to one more ``ε`` relative,
   whatever underflowed inside it. If at every block every entry that is not
   structurally zero is ``≥ θ_b``, then by induction every entry of every
   message, and ``Z``, equals the result of exact arithmetic up to
   ``O(blocks · ε)`` relative rounding.

The check per block is ``min(out) ≥ θ_b`` (nothing small), or: the smallest
positive entry is ``≥ θ_b`` *and* no product of positive numbers can underflow
(the smallest positive entries of ``τ`` and of ``S'``, the latter read off
``log S``, multiply to at least ``2 · tiny``), so every zero is structural.
Otherwise the guard trips. ``θ_b`` is about ``e^{−68}`` for ``C = 16`` in float32
and ``e^{−665}`` in float64: a message may span about 68 (float32) or 665
(float64) nats below its maximum; the messages of random binary grids with
N(0, 1) log-potentials span about 24 nats at 16×16 (measured). The guard trips
when hard zeros remove the configurations that dominated a rescaled table (the
survivors had underflowed), or when a message spans more than ``−log θ_b``;
the answer is then still exact, only slower.

Marginals: the adjoint of a message entry is ``μ(x) / τ(x)`` (the marginal of the
message's configuration over the entry), so adjoints stay below ``1 / θ_b``
wherever ``τ`` is not structurally zero, and an adjoint lost to underflow moves
a marginal by at most a few ``C · |τ| · tiny`` in absolute terms: when the
forward pass is trusted, so are the marginals (to rounding, in absolute terms).
A non-finite gradient (a structural zero where blocked configurations would
have dominated) also sends the query to the log-space engine.

Hard zeros (``θ = −inf``) are exact: a slice that is entirely ``−inf`` gives
``−inf`` (never ``−inf − (−inf) = NaN``), and its gradient is zero, not NaN.
A model whose potentials are zero on every configuration has ``Z = 0``:
``log_partition`` returns ``−inf``, ``marginals`` returns all-zero tables
(there is no distribution), and ``map_assignment`` returns some assignment
(all of them have probability zero).

Plans (order, blocks, index data) are static and cached on the structure, so
new parameters never recompile. The compiled engines read all log-potentials
as one flat vector and return one flat gradient, so the program is a few loop
bodies whatever the number of factors. (A ``jit``-ed function that *returns*
one array per factor still pays XLA:CPU's compile cost per output buffer,
about 15 ms each on the test machine; on concrete inputs nothing is
compiled.) MAP on concrete inputs is eager max-plus elimination on the host.

References:
  Dechter, "Bucket elimination: a unifying framework for reasoning", AIJ 1999.
  Koller & Friedman, *Probabilistic Graphical Models*, 2009, ch. 9 and 13.
  Wainwright & Jordan, "Graphical models, exponential families, and
  variational inference", FnT ML 2008.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from umrf._validation import is_concrete
from umrf.inference._eager import (
    log_space_map,
    log_space_value_and_grad,
    window_forward,
    window_value_and_grad,
)
from umrf.inference._elimination import (
    DEFAULT_MAX_TABLE_SIZE,
    EliminationPlan,
    build_plan,
    plan_for,
)
from umrf.inference._program import Program, build_program
from umrf.inference._scaled import (
    FlatLayout,
    auto_functions,
    flat_layout,
    flatten_tables,
    scaled_functions,
    unflatten,
)
from umrf.inference._window import WindowProgram, build_window_program
from umrf.models import DiscreteMRF


class Marginals(NamedTuple):
    """Exact marginals of a ``DiscreteMRF``.

    Attributes:
      variables: ``variables[i]`` is ``p(x_i)``, a vector of length ``K_i``.
      factors: ``factors[k]`` is ``p(x_{C_k})``, a table shaped like factor ``k``.
    """

    variables: tuple[jax.Array, ...]
    factors: tuple[jax.Array, ...]


# --- stable log-sum-exp with NaN-free derivatives on all -inf slices ------------------------
def safe_logsumexp(a: jax.Array, axis: int) -> jax.Array:
    """``log Σ exp(a)`` along ``axis``; ``−inf`` for an all ``−inf`` slice, zero gradient there.

    The max shift keeps every entry stable; the "double where" keeps every
    derivative (of any order) finite: an empty slice (sum zero) takes
    ``log 1`` on a dummy branch, so no ``−inf − (−inf)`` or ``1 / 0`` is formed.
    """
    m = jnp.max(a, axis=axis, keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m)))
    s = jnp.sum(jnp.exp(a - m), axis=axis, keepdims=True)
    live = s > 0
    out = jnp.where(live, jnp.log(jnp.where(live, s, jnp.ones_like(s))) + m, -jnp.inf)
    return jnp.squeeze(out, axis)


def _dtype(tables: Sequence[jax.Array]) -> Any:
    dtypes = {t.dtype for t in tables}
    if len(dtypes) == 1:
        (dt,) = dtypes
        if dt in (np.float32, np.float64):
            return dt
    return jnp.result_type(*dtypes, jnp.float32) if dtypes else jnp.float32


def _to_device(arrays: Sequence[np.ndarray], dtype: Any) -> list[jax.Array]:
    """Host results as jax arrays of ``dtype`` (one transfer call, no per-array dispatch)."""
    dt = np.dtype(dtype)
    return jax.device_put([np.asarray(a, dt) for a in arrays])


def _program(mrf: DiscreteMRF, order: tuple[int, ...] | None) -> Program:
    return build_program(tuple(mrf.cardinalities), tuple(mrf.scopes), order)


def _run(
    prog: Program, tables: Sequence[jax.Array], mode: str
) -> tuple[jax.Array, list[jax.Array]]:
    """Execute ``prog``; ``mode`` "sum" (log-sum-exp) or "max". Returns (value, argmax tables)."""
    dtype = _dtype(tables)
    used = prog.zero_cell
    parts = [flatten_tables(tables, dtype)]  # chunked: see flatten_tables
    parts.append(jnp.asarray([0.0, -jnp.inf], dtype))
    parts.append(jnp.zeros((prog.memory_size - used - 2,), dtype))
    mem = jnp.concatenate(parts)
    argmaxes = []
    for seg in prog.segments:

        def body(mem, xs):
            hb, mb, vb, ms, vs, ph, pm, pv, off = xs
            small = jnp.sum(
                mem.at[ms[:, :, None] + vs[:, None, :]].get(mode="promise_in_bounds"), 0
            )
            small = small + (pm[:, None] + pv[None, :])
            big = mem.at[hb[:, None, None] + mb[None, :, None] + vb[None, None, :]].get(
                mode="promise_in_bounds"
            )
            acc = big + small[None, :, :] + ph[:, None, None]
            if mode == "sum":
                out, arg = safe_logsumexp(acc, 2), None
            else:
                out, arg = jnp.max(acc, axis=2), jnp.argmax(acc, axis=2).astype(jnp.int32)
            mem = jax.lax.dynamic_update_slice(mem, jnp.reshape(out, (-1,)), (off,))
            return mem, arg

        xs = (
            seg.hb,
            seg.mb,
            seg.vb,
            seg.ms,
            seg.vs,
            seg.pen_h.astype(dtype),
            seg.pen_m.astype(dtype),
            seg.pen_v.astype(dtype),
            seg.out_off,
        )
        mem, arg = jax.lax.scan(body, mem, xs)
        argmaxes.append(arg)
    total = jnp.asarray(prog.constant, dtype)
    if prog.result_cells:
        total = total + jnp.sum(mem[np.asarray(prog.result_cells, np.int32)])
    return total, argmaxes


def _tables(mrf: DiscreteMRF) -> list[jax.Array]:
    return [f.log_potential for f in mrf.factors]


def _check(mrf: Any, name: str = "mrf") -> None:
    if not isinstance(mrf, DiscreteMRF):
        raise TypeError(f"`{name}` must be a umrf.models.DiscreteMRF; got {type(mrf).__name__}.")


def elimination_plan(mrf: DiscreteMRF, order: Sequence[int] | None = None) -> EliminationPlan:
    """The static variable-elimination plan of ``mrf`` and its cost estimate.

    Args:
      mrf: the model (only its structure is read).
      order: an explicit elimination order; ``None`` uses greedy weighted min-fill.

    Returns:
      An :class:`EliminationPlan` with ``order``, ``treewidth`` (the induced
      width of the order) and ``max_table_size`` (entries of the largest table
      the exact engine will build). Cached per structure.

    Examples:
      >>> import umrf
      >>> from umrf.models import DiscreteMRF, Factor
      >>> g = umrf.graphs.grid(4, 4)
      >>> mrf = DiscreteMRF([2] * 16, [Factor(e, [[0.0, 0.0], [0.0, 0.0]]) for e in g.edges])
      >>> elimination_plan(mrf).treewidth
      4
    """
    _check(mrf)
    return plan_for(mrf, order)


def _static_order(order: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if order is None else tuple(int(v) for v in order)


METHODS = ("auto", "log", "scaled")


def _check_method(method: Any, allowed: tuple[str, ...] = METHODS) -> None:
    if method not in allowed:
        raise ValueError(
            f"`method` must be one of {', '.join(repr(m) for m in allowed)}; got {method!r}. "
            "'auto' (default) is exact and fastest."
        )


def _candidate_orders(
    cards: tuple[int, ...], scopes: tuple[tuple[int, ...], ...], plan: EliminationPlan
) -> list[tuple[int, ...]]:
    n = len(cards)
    out = [plan.order, tuple(range(n))]
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from((a, b) for s in scopes for i, a in enumerate(s) for b in s[i + 1 :])
    out.append(tuple(int(v) for v in nx.utils.reverse_cuthill_mckee_ordering(g)))
    seen, uniq = set(), []
    for o in out:
        if o not in seen:
            seen.add(o)
            uniq.append(o)
    return uniq


@functools.lru_cache(maxsize=256)
def window_for(
    cardinalities: tuple[int, ...],
    scopes: tuple[tuple[int, ...], ...],
    order: tuple[int, ...] | None,
) -> WindowProgram | None:
    """The scaled engine's block program for a structure, or ``None`` when not banded.

    With ``order=None`` the candidates are the plan's order, the natural order
    ``0..n−1`` and reverse Cuthill–McKee (a bandwidth-reducing order); the one
    with the smallest largest table (then least work) is kept if that table has
    at most ``max(4 × plan.max_table_size, 2^12)`` entries.
    """
    plan = build_plan(cardinalities, scopes, order)
    orders = [order] if order is not None else _candidate_orders(cardinalities, scopes, plan)
    progs = [build_window_program(cardinalities, scopes, o) for o in orders]
    progs = [p for p in progs if p is not None]
    if not progs:
        return None
    best = min(progs, key=lambda p: (p.largest, p.work, len(p.shapes)))
    if best.largest > max(4 * plan.max_table_size, 2**12):
        return None
    return best


def _key(mrf: DiscreteMRF, order: tuple[int, ...] | None):
    return tuple(mrf.cardinalities), tuple(mrf.scopes), order


# --- the eager (host) path ------------------------------------------------------------------
def _host_exact(
    key, thetas: Sequence[np.ndarray], dtype: Any, method: str, *, grad: bool
) -> tuple[float, list[np.ndarray] | None]:
    """``(log Z, grads)`` on the host: scaled (float32, then float64), then log-space float64."""
    cards, scopes, order = key
    prog = window_for(cards, scopes, order)
    if prog is not None:
        guard = method == "auto"
        dtypes = [np.float32, np.float64] if np.dtype(dtype) == np.float32 and guard else [dtype]
        for dt in dtypes:
            if grad:
                log_z, grads, trusted = window_value_and_grad(prog, thetas, dt, guard=guard)
            else:
                log_z, trusted, _ = window_forward(prog, thetas, dt, guard=guard)
                grads = None
            if trusted:
                return log_z, grads
    elif method == "scaled":
        raise ValueError(
            "`method='scaled'` needs a banded elimination order (the dense window engine); this "
            "structure has none within the memory budget. Use method='auto' or 'log'."
        )
    return log_space_value_and_grad(build_plan(cards, scopes, order), cards, thetas, grad=grad)


def _eager(mrf: DiscreteMRF, order, method: str, *, grad: bool):
    thetas = [np.asarray(t) for t in _tables(mrf)]
    return _host_exact(_key(mrf, order), thetas, _dtype(_tables(mrf)), method, grad=grad)


def _host_exact_flat(key, layout: FlatLayout):
    """The host fallback of the compiled ``"auto"`` program: flat float64 in, flat gradient out."""

    def run(flat: np.ndarray, grad: bool):
        thetas = [
            np.reshape(flat[o : o + math.prod(sh)], sh)
            for o, sh in zip(layout.offsets, layout.shapes, strict=True)
        ]
        log_z, grads = _host_exact(key, thetas, np.float64, "auto", grad=grad)
        if grads is None:
            return log_z, None
        gflat = np.concatenate([np.reshape(g, (-1,)) for g in grads]) if grads else np.zeros(0)
        return log_z, gflat

    return run


# --- the compiled path ----------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _compiled(key, method: str) -> tuple[Any, Any, FlatLayout] | None:
    """``(log_partition(flat), value_and_grad(flat), layout)`` of ``method``, or ``None``.

    ``None`` means: use the log-space program (``method="log"``, or a structure
    without a uniform banded block program).
    """
    cards, scopes, order = key
    prog = window_for(cards, scopes, order)
    if method == "log" or prog is None or not prog.uniform:
        if method == "scaled":
            raise ValueError(
                "`method='scaled'` under jit/grad/vmap needs a banded order whose blocks share one "
                "shape (one cardinality for all variables); use method='auto' or 'log'."
            )
        return None
    layout = flat_layout(tuple(tuple(cards[v] for v in s) for s in scopes))
    if method == "scaled":
        lp, vg = scaled_functions(prog, layout)
        return lp, vg, layout
    program = build_program(cards, scopes, order)

    def exact(flat):
        return _run(program, unflatten(flat, layout), "sum")[0]

    lp, vg = auto_functions(prog, layout, _host_exact_flat(key, layout), exact)
    return lp, vg, layout


def _traced_log_partition(mrf: DiscreteMRF, order, method: str) -> jax.Array:
    fns = _compiled(_key(mrf, order), method)
    if fns is None:
        return _log_partition_jit(mrf, order)
    return fns[0](flatten_tables(_tables(mrf), _dtype(_tables(mrf))))


def _traced_value_and_grad(mrf: DiscreteMRF, order, method: str):
    fns = _compiled(_key(mrf, order), method)
    if fns is None:
        return _marginals_jit(mrf, order)
    log_z, gflat = fns[1](flatten_tables(_tables(mrf), _dtype(_tables(mrf))))
    fm = unflatten(gflat, fns[2])
    return log_z, Marginals(_variable_marginals(mrf, fm, log_z), fm)


@functools.partial(jax.jit, static_argnums=(1,))
def _log_partition_exact(mrf: DiscreteMRF, order: tuple[int, ...] | None) -> jax.Array:
    """The log-space engine (always exact): ``log Z`` from the scanned program."""
    return _run(_program(mrf, order), _tables(mrf), "sum")[0]


@functools.partial(jax.jit, static_argnums=(1,))
def _log_partition_jit(mrf: DiscreteMRF, order: tuple[int, ...] | None) -> jax.Array:
    return _log_partition_exact(mrf, order)


def _prepare(mrf: Any, order: Sequence[int] | None, method: Any, max_table_size: int):
    _check(mrf)
    _check_method(method)
    plan_for(mrf, order).check_budget(max_table_size)
    return _static_order(order)


def log_partition(
    mrf: DiscreteMRF,
    *,
    method: str = "auto",
    max_table_size: int = DEFAULT_MAX_TABLE_SIZE,
    order: Sequence[int] | None = None,
) -> jax.Array:
    """Exact ``log Z = log Σ_x Π_k ψ_k(x_{C_k})`` by variable elimination.

    Args:
      mrf: the model.
      method: ``"auto"`` (default: the guarded probability-space engine, eager
        on concrete inputs, with the log-space engine as fallback; exact),
        ``"log"`` (the compiled log-space engine) or ``"scaled"`` (the
        probability-space engine without its guard; for tests). See the module
        docstring.
      max_table_size: memory budget: the largest intermediate table allowed
        (entries) in the log-space plan. Raise it to run models of larger
        induced width.
      order: optional elimination order; default: chosen per engine (greedy
        weighted min-fill for the log-space engine, the most banded of a few
        candidates for the probability-space one).

    Returns:
      A scalar; ``−inf`` when every configuration has potential zero (``Z = 0``).

    Raises:
      TypeError: ``mrf`` is not a ``DiscreteMRF``.
      ValueError: the largest table would exceed ``max_table_size`` (the
        message gives the estimate), a bad ``order``, an unknown ``method``, or
        ``method="scaled"`` on a structure without a banded order.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from umrf.models import DiscreteMRF, Factor
      >>> mrf = DiscreteMRF([2, 2], [Factor((0, 1), jnp.zeros((2, 2)))])
      >>> round(float(log_partition(mrf)), 4)  # log 4, computed on the host
      1.3863
      >>> round(float(jax.jit(log_partition)(mrf)), 4)  # one compiled program
      1.3863
      >>> round(float(log_partition(mrf, method="log")), 4)
      1.3863
    """
    order = _prepare(mrf, order, method, max_table_size)
    if is_concrete(mrf) and method != "log":
        return _to_device([_eager(mrf, order, method, grad=False)[0]], _dtype(_tables(mrf)))[0]
    return _traced_log_partition(mrf, order, method)


def _variable_marginals(
    mrf: DiscreteMRF, factor_marginals: Sequence[jax.Array], log_z: jax.Array
) -> tuple[jax.Array, ...]:
    out = []
    for i, k_i in enumerate(mrf.cardinalities):
        best = None
        for k, f in enumerate(mrf.factors):
            if i in f.scope and (best is None or f.log_potential.size < best[1]):
                best = (k, f.log_potential.size)
        if best is None:
            live = jnp.isfinite(log_z).astype(log_z.dtype)
            out.append(jnp.full((k_i,), 1.0 / k_i, log_z.dtype) * live)
            continue
        k = best[0]
        scope = mrf.factors[k].scope
        axes = tuple(a for a, v in enumerate(scope) if v != i)
        out.append(jnp.sum(factor_marginals[k], axis=axes))
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _smallest_factor(cards: tuple[int, ...], scopes: tuple[tuple[int, ...], ...]):
    """Per variable: ``(factor, axes to sum)`` of its smallest factor (first of equals), or None."""
    best: list[tuple[int, int] | None] = [None] * len(cards)
    for k, s in enumerate(scopes):
        size = math.prod(cards[v] for v in s)
        for v in s:
            b = best[v]
            if b is None or size < b[1]:
                best[v] = (k, size)
    out = []
    for i, b in enumerate(best):
        if b is None:
            out.append(None)
        else:
            out.append((b[0], tuple(a for a, v in enumerate(scopes[b[0]]) if v != i)))
    return tuple(out)


def _variable_marginals_host(mrf: DiscreteMRF, grads, log_z: float) -> list[np.ndarray]:
    out = []
    plan = _smallest_factor(tuple(mrf.cardinalities), tuple(mrf.scopes))
    for k_i, pick in zip(mrf.cardinalities, plan, strict=True):
        if pick is None:
            live = 1.0 if math.isfinite(log_z) else 0.0
            out.append(np.full((k_i,), live / k_i))
        else:
            out.append(np.sum(grads[pick[0]], axis=pick[1]) if pick[1] else grads[pick[0]])
    return out


@functools.partial(jax.jit, static_argnums=(1,))
def _marginals_jit(mrf: DiscreteMRF, order: tuple[int, ...] | None) -> tuple[jax.Array, Marginals]:
    log_z, grads = jax.value_and_grad(_log_partition_exact)(mrf, order)
    fm = tuple(f.log_potential for f in grads.factors)
    return log_z, Marginals(_variable_marginals(mrf, fm, log_z), fm)


def _log_partition_and_marginals(mrf, order, method) -> tuple[jax.Array, Marginals]:
    if is_concrete(mrf) and method != "log":
        log_z, grads = _eager(mrf, order, method, grad=True)
        dtype = np.dtype(_dtype(_tables(mrf)))
        vm = _variable_marginals_host(mrf, grads, log_z)
        out = _to_device([log_z, *vm, *grads], dtype)
        n = len(vm)
        return out[0], Marginals(tuple(out[1 : 1 + n]), tuple(out[1 + n :]))
    return _traced_value_and_grad(mrf, order, method)


def marginals(
    mrf: DiscreteMRF,
    *,
    method: str = "auto",
    max_table_size: int = DEFAULT_MAX_TABLE_SIZE,
    order: Sequence[int] | None = None,
) -> Marginals:
    """Exact marginals of every variable and every factor.

    Computed as ``p(x_{C_k} = c) = ∂ log Z / ∂ θ_k(c)`` by one reverse pass
    through the elimination (two GEMMs per block; about twice the cost of
    ``log Z``); ``p(x_i)`` is the sum of the smallest factor marginal containing
    ``i`` (uniform for a variable in no factor).

    Args:
      mrf: the model.
      method: ``"auto"``, ``"log"`` or ``"scaled"`` (see :func:`log_partition`).
      max_table_size: memory budget (entries of the largest table).
      order: optional elimination order.

    Returns:
      :class:`Marginals` ``(variables, factors)``. When ``Z = 0`` every table
      is zero (there is no distribution).

    Raises:
      TypeError, ValueError: as :func:`log_partition`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from umrf.models import DiscreteMRF, Factor
      >>> mrf = DiscreteMRF([2], [Factor((0,), jnp.log(jnp.array([1.0, 3.0])))])
      >>> [round(p, 4) for p in marginals(mrf).variables[0].tolist()]
      [0.25, 0.75]
    """
    order = _prepare(mrf, order, method, max_table_size)
    return _log_partition_and_marginals(mrf, order, method)[1]


def log_partition_and_marginals(
    mrf: DiscreteMRF,
    *,
    method: str = "auto",
    max_table_size: int = DEFAULT_MAX_TABLE_SIZE,
    order: Sequence[int] | None = None,
) -> tuple[jax.Array, Marginals]:
    """``(log Z, marginals)`` from one forward and one reverse pass (see :func:`marginals`).

    Args:
      mrf: the model.
      method: ``"auto"``, ``"log"`` or ``"scaled"`` (see :func:`log_partition`).
      max_table_size: memory budget (entries of the largest table).
      order: optional elimination order.

    Returns:
      ``(log Z, Marginals)``.

    Raises:
      TypeError, ValueError: as :func:`log_partition`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from umrf.models import DiscreteMRF, Factor
      >>> mrf = DiscreteMRF([2, 2], [Factor((0, 1), jnp.log(jnp.array([[1.0, 1.0], [1.0, 5.0]])))])
      >>> log_z, mg = log_partition_and_marginals(mrf)
      >>> round(float(jnp.exp(log_z)), 4), [round(p, 4) for p in mg.variables[1].tolist()]
      (8.0, [0.25, 0.75])
    """
    order = _prepare(mrf, order, method, max_table_size)
    return _log_partition_and_marginals(mrf, order, method)


@functools.partial(jax.jit, static_argnums=(1,))
def _map_jit(mrf: DiscreteMRF, order: tuple[int, ...] | None) -> jax.Array:
    prog = _program(mrf, order)
    _, argmaxes = _run(prog, _tables(mrf), "max")
    n = mrf.num_variables
    x = jnp.zeros((n + 1,), jnp.int32)  # slot n is a dummy that stays 0
    for seg, arg in zip(reversed(prog.segments), reversed(argmaxes), strict=True):

        def back(x, xs):
            var, hv, hp, mv, mp, table = xs
            h = jnp.sum(x[hv] * hp)
            m = jnp.sum(x[mv] * mp)
            return x.at[var].set(table[h, m]), None

        xs = (seg.variable, seg.hi_vars, seg.hi_place, seg.mid_vars, seg.mid_place, arg)
        x, _ = jax.lax.scan(back, x, xs, reverse=True)
    x = x[:n]
    return x


def map_assignment(
    mrf: DiscreteMRF,
    *,
    method: str = "auto",
    max_table_size: int = DEFAULT_MAX_TABLE_SIZE,
    order: Sequence[int] | None = None,
) -> jax.Array:
    """A most probable configuration ``argmax_x Π_k ψ_k(x_{C_k})`` (max-product + backtracking).

    The forward pass replaces ``logsumexp`` by ``max`` and keeps each step's
    argmax table; the backward pass visits the steps in reverse and sets the
    eliminated variable to the argmax of its union table given the variables
    already decoded (Koller & Friedman, 2009, Alg. 13.1). Max-plus in
    log-space needs no rescaling, so ``"auto"`` runs it eagerly on the host
    (numpy, float64, dense union tables) for concrete inputs and as the
    compiled log-space program under tracing. Ties go to the smallest state;
    a variable in no factor gets state 0.

    Args:
      mrf: the model.
      method: ``"auto"`` (default) or ``"log"`` (always the compiled program).
      max_table_size: memory budget (entries of the largest table).
      order: optional elimination order.

    Returns:
      An ``int32`` array of shape ``(n,)``, one state per variable.

    Raises:
      TypeError, ValueError: as :func:`log_partition`; ``method="scaled"`` is
        refused (max-product needs no rescaling).

    Examples:
      >>> import jax.numpy as jnp
      >>> from umrf.models import DiscreteMRF, Factor
      >>> mrf = DiscreteMRF([2, 3], [Factor((0, 1), jnp.array([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]]))])
      >>> map_assignment(mrf).tolist()
      [1, 0]
    """
    _check(mrf)
    _check_method(method, ("auto", "log"))
    plan = plan_for(mrf, order)
    plan.check_budget(max_table_size)
    order = _static_order(order)
    if is_concrete(mrf) and method == "auto":
        thetas = [np.asarray(t) for t in _tables(mrf)]
        x = log_space_map(plan, mrf.cardinalities, thetas, np.dtype(_dtype(_tables(mrf))))
        return jax.device_put(x)
    return _map_jit(mrf, order)


__all__ = [
    "Marginals",
    "elimination_plan",
    "log_partition",
    "log_partition_and_marginals",
    "map_assignment",
    "marginals",
    "safe_logsumexp",
]
