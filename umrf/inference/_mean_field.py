r"""Naive mean-field variational inference for a ``DiscreteMRF``.

Fit a fully factorised ``q(x) = Π_i q_i(x_i)`` to ``p(x) = (1/Z) Π_k ψ_k(x_{C_k})``
by maximising the evidence lower bound

    ELBO(q) = Σ_k E_q[log ψ_k(x_{C_k})] + Σ_i H(q_i) = log Z − KL(q ‖ p) ≤ log Z.

The optimum over one ``q_i`` with the others fixed is

    q_i(s) ∝ exp( Σ_{k: i ∈ C_k} E_{q_{C_k \ i}}[log ψ_k(x_{C_k \ i}, x_i = s)] ).

Schedule: variables are grouped by a proper colouring of the MRF's graph
(``umrf.graphs.colouring``). Two variables of one colour share no factor, so
updating a whole colour class at once equals updating its members one after
the other: every colour update is exact block coordinate ascent and the ELBO
never decreases (the fully parallel "all variables at once" update has no
such guarantee and can oscillate). With ``damping = d`` the new factor is
``(1 − d)·q_i^new + d·q_i^old``; the ELBO is concave in each ``q_i``, so the
damped step is still an ascent step.

Hard zeros are exact: ``E_q[log ψ]`` is ``−inf`` when ``q`` puts mass on a
zero of ``ψ`` and ignores zeros that ``q`` does not reach (``0·log 0 = 0``).

References:
  M. I. Jordan, Z. Ghahramani, T. S. Jaakkola, L. K. Saul, "An introduction to
  variational methods for graphical models", Machine Learning 37, 1999.
  M. J. Wainwright, M. I. Jordan, *Graphical Models, Exponential Families, and
  Variational Inference*, 2008, §5.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

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
from umrf.graphs import colouring
from umrf.inference._loopy_bp import xlogx
from umrf.models import DiscreteMRF


class MeanFieldResult(NamedTuple):
    """Result of :func:`mean_field`.

    Attributes:
      variables: ``(n, K_max)`` array; row ``i`` is ``q_i``, zero-padded beyond
        ``K_i`` (:meth:`variable` returns it unpadded).
      factors: the tables ``Π_{i ∈ C_k} q_i`` of all factors, raveled and
        concatenated in factor order (one array, so the compiled program stays
        small); :meth:`factor` and :meth:`factor_tables` reshape them.
      elbo: the evidence lower bound of the final ``q`` (``≤ log Z``).
        ``−inf`` when some update found every state of a variable excluded by
        a hard zero under the current ``q`` (e.g. all-zero potentials, whose
        exact ``log Z`` is ``−inf``; or hard constraints that a factorised
        ``q`` started at uniform cannot satisfy). ``q`` is then NaN (no
        distribution), never a plausible number.
      elbo_trace: ``(num_iters,)`` ELBO after each iteration (non-decreasing).
      max_change: ``max |q_new − q_old|`` over the last iteration.
      converged: ``max_change < tol`` and no update was empty.
    """

    variables: jax.Array
    factors: jax.Array
    elbo: jax.Array
    elbo_trace: jax.Array
    max_change: jax.Array
    converged: jax.Array

    variable = packed_variable
    factor = packed_factor
    factor_tables = packed_factor_tables


def _expand(q: jax.Array, slot: int, arity: int) -> jax.Array:
    """``(E, K)`` -> ``(E, 1, …, K, …, 1)`` with ``K`` on axis ``1 + slot``."""
    shape = [q.shape[0]] + [1] * arity
    shape[1 + slot] = q.shape[1]
    return q.reshape(shape)


def expected_log_potential(table: jax.Array, qs: list[jax.Array], keep: int | None) -> jax.Array:
    """``Σ_{x_{-keep}} θ(x) Π_{l ≠ keep} q_l(x_l)`` with ``0·(−inf) = 0`` (keep=None: full sum).

    Args:
      table: ``(E, K_1, …, K_m)`` log-potentials.
      qs: ``m`` arrays ``(E, K_l)``.
      keep: the slot left free (result ``(E, K_keep)``), or None (result ``(E,)``).
    """
    m = len(qs)
    w = jnp.ones((table.shape[0],) + (1,) * m, table.dtype)
    for l, ql in enumerate(qs):
        if l != keep:
            w = w * _expand(ql, l, m)
    term = jnp.where(w > 0, table, jnp.zeros((), table.dtype)) * w
    axes = tuple(1 + l for l in range(m) if l != keep)
    return jnp.sum(term, axis=axes)


def _entropy(q: jax.Array) -> jax.Array:
    return -jnp.sum(xlogx(q))


def _factor_tables(fg: FactorGroups, q: jax.Array) -> jax.Array:
    per_group = []
    for g in fg.groups:
        m = len(g.shape)
        prod = jnp.ones((len(g.factor_ids),) + (1,) * m, q.dtype)
        for l in range(m):
            prod = prod * _expand(q[g.scopes[:, l], : g.shape[l]], l, m)
        per_group.append(prod)
    return pack_factor_tables(fg, per_group)


def mean_field(
    mrf: DiscreteMRF, *, num_iters: int = 50, damping: float = 0.0, tol: float = 1e-5
) -> MeanFieldResult:
    """Naive mean-field approximation and its ELBO (a lower bound on ``log Z``).

    Coordinate ascent on ``q = Π_i q_i`` by colour classes (see the module
    docstring): for ``num_iters`` iterations, every colour class in turn is
    set to ``q_i ∝ exp(Σ_{k ∋ i} E_q[log ψ_k | x_i])``, damped by ``damping``.
    Starts from uniform ``q_i``. Jit-able (``num_iters``/``damping``/``tol``
    are static), vmap-able over MRFs of one structure and differentiable with
    respect to the log-potentials (through the unrolled iterations).

    Args:
      mrf: the model.
      num_iters: number of sweeps over all colour classes (``≥ 1``).
      damping: ``d ∈ [0, 1)``; ``q ← (1 − d) q_new + d q_old``.
      tol: convergence threshold on ``max |q_new − q_old|`` (reported only).

    Returns:
      :class:`MeanFieldResult` ``(variables, factors, elbo, elbo_trace,
      max_change, converged)``.

    Raises:
      TypeError/ValueError: not a DiscreteMRF, ``num_iters < 1``, ``damping``
        outside ``[0, 1)``, non-positive ``tol``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> from umrf.models import DiscreteMRF, Factor
      >>> mrf = DiscreteMRF([2, 2], [Factor((0, 1), jnp.array([[1.0, 0.0], [0.0, 1.0]]))])
      >>> res = umrf.inference.mean_field(mrf, num_iters=20)
      >>> bool(res.elbo <= umrf.inference.log_partition(mrf) + 1e-6)
      True
    """
    check_mrf("mrf", mrf)
    num_iters = check_positive_int("num_iters", num_iters)
    check_probability("damping", damping)
    check_positive("tol", tol)
    fg = groups_for(mrf)
    if "mf_classes" not in fg.plans:
        fg.plans["mf_classes"] = [np.asarray(c) for c in colouring(mrf.graph)]
    # Stack the per-factor log-potentials OUTSIDE the compiled program (in numpy when
    # they are concrete): a program taking one leaf per factor compiles very slowly.
    tables = fg.tables(mrf, pad_value=0.0)  # q = 0 on padded states
    dtype = jnp.result_type(*tables, jnp.float32) if tables else jnp.float32
    const = fg.constant(mrf, dtype)
    return _mean_field(tables, const, fg, num_iters, float(damping), float(tol))


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _mean_field(
    tables: list[jax.Array],
    const: jax.Array,
    fg: FactorGroups,
    num_iters: int,
    damping: float,
    tol: float,
) -> MeanFieldResult:
    """The jitted program (one compile per structure and static settings).

    Args:
      tables: ``fg.tables(mrf, pad_value=0.0)``, the stacked per-group log-potentials.
      const: the sum of the arity-0 log-potentials, ``fg.constant(mrf, dtype)``.
      fg: the (cached, static) factor groups of the MRF's structure, with the colour
        classes in ``fg.plans["mf_classes"]``.
      num_iters: as in :func:`mean_field`.
      damping: as in :func:`mean_field`.
      tol: as in :func:`mean_field`.
    """
    dtype = jnp.result_type(*tables, jnp.float32) if tables else jnp.float32
    tables = [t.astype(dtype) for t in tables]
    classes = fg.plans["mf_classes"]
    plans = [(cls, fg.incidences(cls), jnp.asarray(~fg.state_mask[cls])) for cls in classes]
    mask = jnp.asarray(fg.state_mask)
    q0 = mask.astype(dtype) / mask.sum(axis=1, keepdims=True).astype(dtype)

    def slot_qs(q: jax.Array, g: Any, rows: np.ndarray) -> list[jax.Array]:
        return [q[g.scopes[rows, l], : g.shape[l]] for l in range(len(g.shape))]

    def elbo(q: jax.Array) -> jax.Array:
        total = const + _entropy(q)
        for g, t in zip(fg.groups, tables, strict=True):
            rows = np.arange(len(g.factor_ids))
            total = total + jnp.sum(expected_log_potential(t, slot_qs(q, g, rows), None))
        return total

    def sweep(carry: Any, _: Any) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        q, empty = carry
        change = jnp.zeros((), dtype)
        for cls, incid, invalid in plans:
            logits = jnp.where(invalid, -jnp.inf, jnp.zeros(invalid.shape, dtype))
            for gi, slot, rows, pos in incid:
                g = fg.groups[gi]
                msg = expected_log_potential(tables[gi][rows], slot_qs(q, g, rows), slot)
                logits = logits.at[pos, : g.shape[slot]].add(msg)
            empty = empty | jnp.any(jnp.all(jnp.isneginf(logits), axis=-1))
            new = jax.nn.softmax(logits, axis=-1)
            new = (1.0 - damping) * new + damping * q[cls] if damping else new
            change = jnp.maximum(change, jnp.max(jnp.abs(new - q[cls])))
            q = q.at[cls].set(new)
        value = jnp.where(empty, jnp.asarray(-jnp.inf, dtype), elbo(q))
        return (q, empty), (change, value)

    (q, empty), (changes, trace) = jax.lax.scan(
        sweep, (q0, jnp.zeros((), bool)), None, length=num_iters
    )
    return MeanFieldResult(
        q,
        _factor_tables(fg, q),
        trace[-1],
        trace,
        changes[-1],
        (changes[-1] < tol) & ~empty,
    )
