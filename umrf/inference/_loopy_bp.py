r"""Loopy belief propagation (sum- and max-product) on the factor graph of a ``DiscreteMRF``.

Messages live in log-space on the edges ``(k, i)`` of the factor graph
(factor ``k``, variable ``i ∈ C_k``), with ``θ_k = log ψ_k / T``:

    μ_{i→k}(x_i) = Σ_{k' ∋ i, k' ≠ k} μ_{k'→i}(x_i)
    μ_{k→i}(x_i) = ⊕_{x_{C_k \ i}} [ θ_k(x_{C_k}) + Σ_{j ∈ C_k \ i} μ_{j→k}(x_j) ]

where ``⊕`` is log-sum-exp ("sum" mode, sum-product) or max ("max" mode,
max-product). Schedule: *parallel* (flooding): every factor-to-variable
message is recomputed from the previous iteration's messages at once, then
normalised (log-sum-exp or max set to 0) and damped in log-space,
``μ ← (1 − d)·μ_new + d·μ_old``. On a tree (or chain) the parallel schedule
is exact after ``diameter`` iterations; on loopy graphs it is a fixed-point
iteration of the Bethe free energy (Yedidia, Freeman & Weiss 2005) that may
not converge (the result reports ``max_change`` and ``converged``).

Outputs: variable beliefs ``b_i ∝ exp(Σ_{k ∋ i} μ_{k→i})``, factor beliefs
``b_k ∝ exp(θ_k + Σ_{j ∈ C_k} μ_{j→k})``, the Bethe estimate

    log Z_Bethe = Σ_k [E_{b_k} θ_k + H(b_k)] − Σ_i (d_i − 1) H(b_i)

(``d_i`` = number of factors containing ``i``), exact on trees, and a MAP
decoding ``x̂_i = argmax b_i`` (exact for max-product on trees without ties).

Vectorisation: factors are grouped by arity (tables padded with ``-inf`` to a
common shape) and edges are stored slot-major, so one iteration is one
segment sum over the edges, one gather, ``logsumexp``/``max`` reductions and one
concatenation per group and slot, independent of the number of factors;
reductions over short state axes are unrolled into elementwise operations
(XLA's CPU reduce over a 2-long axis costs far more than its arithmetic), and
only the last iteration measures ``max_change``. Variable-to-factor messages are
sums over the *other* incoming edges, computed as ``b_i − μ_{k→i}`` on the
finite parts plus a count of ``−inf`` entries, so hard zeros (``−inf``) stay
exact and never produce ``−inf − (−inf)``.

References:
  J. Pearl, *Probabilistic Reasoning in Intelligent Systems*, 1988.
  F. R. Kschischang, B. J. Frey, H.-A. Loeliger, "Factor graphs and the
  sum-product algorithm", IEEE Trans. Inf. Theory 47, 2001.
  J. S. Yedidia, W. T. Freeman, Y. Weiss, "Constructing free-energy
  approximations and generalized belief propagation algorithms", IEEE Trans.
  Inf. Theory 51, 2005.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._structure import (
    FactorGroups,
    check_mrf,
    groups_for,
    pack_factor_tables,
    packed_factor,
    packed_factor_tables,
    packed_variable,
)
from umrf._validation import check_positive, check_positive_int, check_probability
from umrf.models import DiscreteMRF


class BeliefPropagationResult(NamedTuple):
    """Result of :func:`loopy_belief_propagation`.

    Attributes:
      variables: ``(n, K_max)`` array; row ``i`` is the belief ``b_i``
        (approximate marginal; in max mode the normalised max-marginal),
        zero-padded beyond ``K_i``. :meth:`variable` returns it unpadded.
      factors: the factor beliefs ``b_k`` of all factors, raveled and
        concatenated in factor order (one array, so the compiled program stays
        small for models with thousands of factors); :meth:`factor` and
        :meth:`factor_tables` reshape them.
      log_partition: sum mode: the Bethe estimate of ``log Z`` (of
        ``p ∝ exp(-E/T)``); max mode: ``Σ_k log ψ_k(x̂) = −E(x̂)``, the
        unnormalised log-probability of the decoded assignment. ``−inf`` when
        some belief has no state of positive weight (the model has no mass as
        far as BP can see, e.g. an all-zero potential; the exact ``log Z`` of
        such a model is ``−inf`` too); the beliefs are then NaN (there is no
        distribution), never a plausible number.
      map_assignment: ``(n,)`` int32, ``argmax_s b_i(s)`` per variable.
      max_change: largest absolute change of a factor-to-variable log-message
        in the last iteration (``inf`` if a message switched to/from ``−inf``).
      converged: ``max_change < tol`` and the beliefs are not empty.
    """

    variables: jax.Array
    factors: jax.Array
    log_partition: jax.Array
    map_assignment: jax.Array
    max_change: jax.Array
    converged: jax.Array

    variable = packed_variable
    factor = packed_factor
    factor_tables = packed_factor_tables


# Axes up to this size are reduced by unrolled elementwise operations, which XLA
# fuses with their neighbours; on CPU a reduce op over a 2- or 3-long axis costs far
# more than the arithmetic (messages have one such axis per variable state).
_UNROLL_AXIS = 8


def _reduce(x: jax.Array, axes: tuple[int, ...], op: str, keepdims: bool = False) -> jax.Array:
    """``max`` or ``sum`` of ``x`` over ``axes``; short axes unrolled (see ``_UNROLL_AXIS``)."""
    combine = jnp.maximum if op == "max" else jnp.add
    for ax in sorted(axes, reverse=True):
        n = x.shape[ax]
        if n <= _UNROLL_AXIS:
            parts = [jax.lax.index_in_dim(x, i, ax, keepdims=True) for i in range(n)]
            x = functools.reduce(combine, parts)
        else:
            x = (jnp.max if op == "max" else jnp.sum)(x, axis=ax, keepdims=True)
    return x if keepdims else jnp.squeeze(x, axes)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _lse(a: jax.Array, axis: tuple[int, ...]) -> jax.Array:
    """Log-sum-exp over ``axis``: ``−inf`` on an all ``−inf`` slice, with a NaN-free JVP."""
    m = _reduce(a, axis, "max", keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m)))
    return jnp.squeeze(jnp.log(_reduce(jnp.exp(a - m), axis, "sum", keepdims=True)) + m, axis)


@_lse.defjvp
def _lse_jvp(axis, primals, tangents):
    (a,), (ta,) = primals, tangents
    out = _lse(a, axis)
    o = jnp.expand_dims(out, axis)
    ok = jnp.isfinite(o)
    w = jnp.where(ok, jnp.exp(a - jnp.where(ok, o, jnp.zeros_like(o))), jnp.zeros_like(a))
    return out, _reduce(w * ta, axis, "sum")


def xlogx(p: jax.Array) -> jax.Array:
    """``p log p`` with ``0 log 0 = 0`` and a zero (not NaN) derivative at ``p = 0``."""
    pos = p > 0
    return jnp.where(pos, p * jnp.log(jnp.where(pos, p, jnp.ones_like(p))), jnp.zeros_like(p))


def _finite_or_zero(x: jax.Array) -> jax.Array:
    return jnp.where(jnp.isfinite(x), x, jnp.zeros_like(x))


class _Edges:
    """Static factor-graph edge indexing (numpy, built once per structure)."""

    def __init__(self, fg: FactorGroups):
        self.edge_ids = []
        var_of = []
        e = 0
        for g in fg.groups:  # slot-major: the edges of one (group, slot) are contiguous
            f, m = g.scopes.shape
            ids = np.arange(e, e + f * m, dtype=np.int32).reshape(m, f).T
            self.edge_ids.append(ids)
            var_of.append(g.scopes.T.reshape(-1))
            e += f * m
        self.num_edges = e
        self.var_of = np.concatenate(var_of) if var_of else np.zeros(0, np.int32)
        card = np.asarray(fg.cardinalities, np.int64)[self.var_of]
        self.valid = np.arange(fg.max_card)[None, :] < card[:, None]
        self.degree = np.bincount(self.var_of, minlength=fg.num_variables).astype(np.int32)


def _expand(x: jax.Array, slot: int, arity: int) -> jax.Array:
    shape = [x.shape[0]] + [1] * arity
    shape[1 + slot] = x.shape[1]
    return x.reshape(shape)


def loopy_belief_propagation(
    mrf: DiscreteMRF,
    *,
    num_iters: int = 100,
    damping: float = 0.5,
    mode: str = "sum",
    temperature: float = 1.0,
    tol: float = 1e-4,
) -> BeliefPropagationResult:
    """Loopy belief propagation with a parallel (flooding) schedule in log-space.

    Runs exactly ``num_iters`` parallel iterations (a ``lax.scan``, so the
    result is differentiable with respect to the log-potentials and jit/vmap
    friendly) and reports the last iteration's ``max_change``.

    Args:
      mrf: the model ``p(x) ∝ Π_k ψ_k(x_{C_k})``.
      num_iters: number of parallel iterations (``≥ 1``); a tree needs its diameter.
      damping: ``d ∈ [0, 1)``; ``μ ← (1 − d)·μ_new + d·μ_old`` in log-space.
      mode: ``"sum"`` (marginals, Bethe log Z) or ``"max"`` (max-marginals, MAP).
      temperature: ``T > 0``; messages use ``θ_k = log ψ_k / T``, i.e. BP for
        ``p_T ∝ exp(−E/T)`` (DESIGN.md §1). Ignored by the argmax in max mode.
      tol: threshold on ``max_change`` for the ``converged`` flag.

    Returns:
      :class:`BeliefPropagationResult` ``(variables, factors, log_partition,
      map_assignment, max_change, converged)``.

    Raises:
      TypeError/ValueError: not a DiscreteMRF, ``num_iters < 1``, ``damping``
        outside ``[0, 1)``, an unknown ``mode``, non-positive ``temperature``/``tol``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> from umrf.models import DiscreteMRF, Factor
      >>> mrf = DiscreteMRF([2, 2], [Factor((0, 1), jnp.array([[1.0, 0.0], [0.0, 1.0]]))])
      >>> bp = umrf.inference.loopy_belief_propagation(mrf, num_iters=5, damping=0.0)
      >>> round(float(bp.log_partition), 5) == round(float(umrf.inference.log_partition(mrf)), 5)
      True
    """
    check_mrf("mrf", mrf)
    num_iters = check_positive_int("num_iters", num_iters)
    check_probability("damping", damping)
    if mode not in ("sum", "max"):
        raise ValueError(f'`mode` must be "sum" or "max"; got {mode!r}.')
    check_positive("temperature", temperature)
    check_positive("tol", tol)
    fg = groups_for(mrf)
    # Stack the per-factor log-potentials OUTSIDE the compiled program (in numpy when
    # they are concrete): a program taking one leaf per factor compiles very slowly.
    raw = fg.tables(mrf)
    dtype = jnp.result_type(*raw, jnp.float32) if raw else jnp.float32
    const = fg.constant(mrf, dtype)
    return _bp(raw, const, fg, num_iters, float(damping), mode, float(temperature), float(tol))


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6, 7))
def _bp(
    raw: list[jax.Array],
    const: jax.Array,
    fg: FactorGroups,
    num_iters: int,
    damping: float,
    mode: str,
    temperature: float,
    tol: float,
) -> BeliefPropagationResult:
    """The jitted program (one compile per structure and static settings).

    Args:
      raw: ``fg.tables(mrf)``, the stacked per-group log-potential tables.
      const: the sum of the arity-0 log-potentials, ``fg.constant(mrf, dtype)``.
      fg: the (cached, static) factor groups of the MRF's structure.
      num_iters: as in :func:`loopy_belief_propagation`.
      damping: as in :func:`loopy_belief_propagation`.
      mode: as in :func:`loopy_belief_propagation`.
      temperature: as in :func:`loopy_belief_propagation`.
      tol: as in :func:`loopy_belief_propagation`.
    """
    ed = fg.plans.get("bp_edges")
    if ed is None:
        ed = fg.plans["bp_edges"] = _Edges(fg)
    dtype = jnp.result_type(*raw, jnp.float32) if raw else jnp.float32
    theta = [(t.astype(dtype) / temperature) for t in raw]
    valid = jnp.asarray(ed.valid)
    var_of = jnp.asarray(ed.var_of)
    kmax = fg.max_card
    neg_inf = jnp.asarray(-jnp.inf, dtype)

    def reduce(a: jax.Array, axes: tuple[int, ...]) -> jax.Array:
        return _lse(a, axes) if mode == "sum" else _reduce(a, axes, "max")

    def per_variable_sum(edge_values: jax.Array) -> jax.Array:
        """``Σ`` over each variable's incoming edges (a segment sum)."""
        return jax.ops.segment_sum(edge_values, var_of, num_segments=fg.num_variables)

    def var_to_factor(msgs: jax.Array) -> jax.Array:
        # Σ over the OTHER incoming edges, exactly, without −inf − (−inf): split each
        # message into its finite part and a count of −inf entries, total both per
        # variable (one gather), and subtract the edge's own share.
        hard = jnp.isneginf(msgs)
        fin = jnp.where(hard, jnp.zeros((), dtype), msgs)
        # One scatter-add over edges (finite parts and −inf counts side by side; counts
        # are small integers, exact in floating point), then one gather back to the edges.
        both = jnp.concatenate([fin, hard.astype(dtype)], axis=1)
        tot = per_variable_sum(both)[ed.var_of]
        tot_f, tot_h = tot[:, :kmax], tot[:, kmax:]
        out = jnp.where(tot_h - hard.astype(dtype) > 0.5, neg_inf, tot_f - fin)
        top = _reduce(jnp.where(valid, out, neg_inf), (1,), "max", keepdims=True)
        return out - jax.lax.stop_gradient(_finite_or_zero(top))

    def incoming_sum(g_index: int, v2f: jax.Array, skip: int | None) -> jax.Array:
        g = fg.groups[g_index]
        m = len(g.shape)
        acc = theta[g_index]
        for l in range(m):
            if l != skip:
                start = int(ed.edge_ids[g_index][0, l])  # slot-major: a contiguous block
                block = v2f[start : start + len(g.factor_ids), : g.shape[l]]
                acc = acc + _expand(block, l, m)
        return acc

    def iterate(msgs: jax.Array) -> jax.Array:
        v2f = var_to_factor(msgs)
        pieces = []  # (group, slot) blocks in edge order: no scatter needed
        for gi, g in enumerate(fg.groups):
            m = len(g.shape)
            for j in range(m):
                acc = incoming_sum(gi, v2f, j)
                out = reduce(acc, tuple(1 + l for l in range(m) if l != j))
                if g.shape[j] < kmax:
                    out = jnp.pad(out, ((0, 0), (0, kmax - g.shape[j])), constant_values=-jnp.inf)
                pieces.append(out)
        new = jnp.concatenate(pieces) if pieces else msgs
        norm = reduce(jnp.where(valid, new, neg_inf), (1,))[:, None]
        new = new - _finite_or_zero(norm)
        if damping:
            new = (1.0 - damping) * new + damping * msgs
        return new

    def max_change(new: jax.Array, old: jax.Array) -> jax.Array:
        a, b = jax.lax.stop_gradient(new), jax.lax.stop_gradient(old)
        same = (a == b) | (jnp.isneginf(a) & jnp.isneginf(b))
        zero = jnp.zeros((), dtype)
        return jnp.max(jnp.abs(jnp.where(same, zero, a) - jnp.where(same, zero, b)), initial=0.0)

    msgs0 = jnp.where(valid, jnp.zeros((), dtype), neg_inf)
    # Only the last iteration's change is reported, so only the last one computes it.
    msgs, _ = jax.lax.scan(lambda m, _: (iterate(m), None), msgs0, None, length=num_iters - 1)
    last = iterate(msgs)
    change = max_change(last, msgs)
    msgs = last

    # --- beliefs ----------------------------------------------------------------------------
    hard = jnp.isneginf(msgs)
    counts = per_variable_sum(hard.astype(dtype))
    vlogit = jnp.where(counts > 0.5, neg_inf, per_variable_sum(jnp.where(hard, 0.0, msgs)))
    vlogit = jnp.where(jnp.asarray(fg.state_mask), vlogit, neg_inf)
    vbel = jax.nn.softmax(vlogit, axis=-1)
    x_hat = jnp.argmax(vlogit, axis=-1).astype(jnp.int32)
    v2f = var_to_factor(msgs)
    fbel: list[jax.Array] = []
    energy_terms = const / temperature
    bethe_factor = jnp.zeros((), dtype)
    # No mass: a variable or factor whose belief has no state of positive weight (e.g.
    # an all-zero potential, or hard zeros that exclude each other along a chain).
    empty = jnp.any(jnp.all(jnp.isneginf(vlogit), axis=-1))
    for gi, g in enumerate(fg.groups):
        m = len(g.shape)
        acc = incoming_sum(gi, v2f, None)
        axes = tuple(range(1, m + 1))
        logz = _lse(acc, axes)
        empty = empty | jnp.any(jnp.isneginf(logz))
        b = jnp.exp(acc - _finite_or_zero(logz).reshape((-1,) + (1,) * m))
        th = theta[gi]
        bethe_factor = bethe_factor + jnp.sum(jnp.where(b > 0, th, 0.0) * b)
        bethe_factor = bethe_factor - jnp.sum(xlogx(b))
        fbel.append(b)
    h_var = -jnp.sum(xlogx(vbel), axis=-1)
    deg = jnp.asarray(ed.degree, dtype)
    if mode == "sum":
        log_z = energy_terms + bethe_factor - jnp.sum((deg - 1.0) * h_var)
    else:
        log_z = fg.log_score(raw, x_hat) + const
    log_z = jnp.where(empty, neg_inf, log_z)
    return BeliefPropagationResult(
        vbel, pack_factor_tables(fg, fbel), log_z, x_hat, change, (change < tol) & ~empty
    )
