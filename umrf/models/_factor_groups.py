"""Static, vectorisable index structure of a :class:`DiscreteMRF` (private helper).

Gibbs sampling, mean-field and loopy belief propagation all need the same
bookkeeping: which factor touches which variable in which slot. Looping over
factors in Python inside traced code makes programs whose size grows with the
model (a 50×50 grid has ~7 500 factors), so factors are grouped by their table
shape ``(K_{v_1}, …, K_{v_m})``: every group is one stacked table of shape
``(F_g, K_1, …, K_m)`` plus an ``(F_g, m)`` integer array of scopes, and one
message/conditional computation is a handful of batched gathers per group and
slot. Everything here is numpy computed once, outside ``jit`` (DESIGN.md §5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf.models._discrete_mrf import DiscreteMRF


class FactorGroup(NamedTuple):
    """Factors sharing one table shape.

    Attributes:
      shape: the slot cardinalities ``(K_1, …, K_m)``.
      factor_ids: ``(F,)`` indices into ``mrf.factors``.
      scopes: ``(F, m)`` variable indices, one row per factor.
    """

    shape: tuple[int, ...]
    factor_ids: np.ndarray
    scopes: np.ndarray


def structure_of(mrf: DiscreteMRF) -> tuple[Any, ...]:
    """The hashable static structure of ``mrf`` (cardinalities and scopes)."""
    return (tuple(mrf.cardinalities), tuple(f.scope for f in mrf.factors))


def check_mrf(name: str, mrf: Any) -> None:
    """Raise ``TypeError`` unless ``mrf`` is a :class:`DiscreteMRF`."""
    if not isinstance(mrf, DiscreteMRF):
        raise TypeError(
            f"`{name}` must be a umrf.models.DiscreteMRF; got {type(mrf).__name__}. Lattice "
            "models convert with `.to_discrete_mrf()`."
        )


def check_same_structure(name: str, mrf: Any, structure: tuple[Any, ...]) -> None:
    """Raise ``ValueError`` if ``mrf`` is not a DiscreteMRF with exactly ``structure``."""
    check_mrf(name, mrf)
    if structure_of(mrf) != structure:
        raise ValueError(
            f"`{name}` has a different structure (cardinalities or factor scopes) from the MRF "
            "the algorithm was built for; pass an MRF of the same structure with new "
            "log-potentials, or build a new algorithm."
        )


class FactorGroups:
    """Factors of an MRF grouped by table shape, with per-variable incidence lists.

    Attributes:
      cardinalities: ``K_i`` per variable.
      num_variables: ``n``.
      max_card: ``max_i K_i`` (the padded state axis).
      groups: the :class:`FactorGroup` list (arity-0 factors excluded).
      constant_ids: indices of arity-0 (constant) factors.
      structure: the hashable structure (for "same structure" checks).
      state_mask: ``(n, max_card)`` bool, True for valid states ``x_i < K_i``.
    """

    def __init__(self, mrf: DiscreteMRF):
        self.cardinalities = tuple(mrf.cardinalities)
        self.num_variables = len(self.cardinalities)
        self.max_card = max(self.cardinalities, default=1)
        self.structure = structure_of(mrf)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        self.constant_ids: list[int] = []
        for k, f in enumerate(mrf.factors):
            if len(f.scope) == 0:
                self.constant_ids.append(k)
                continue
            shape = tuple(self.cardinalities[v] for v in f.scope)
            by_shape.setdefault(shape, []).append(k)
        self.groups: list[FactorGroup] = []
        for shape, ids in by_shape.items():
            scopes = np.asarray([mrf.factors[k].scope for k in ids], dtype=np.int32)
            self.groups.append(FactorGroup(shape, np.asarray(ids, dtype=np.int32), scopes))
        cards = np.asarray(self.cardinalities, dtype=np.int32)
        self.state_mask = np.arange(self.max_card)[None, :] < cards[:, None]

    def tables(self, mrf: DiscreteMRF) -> list[jax.Array]:
        """Stacked log-potential tables, one ``(F_g, K_1, …, K_m)`` array per group."""
        fs = mrf.factors
        return [jnp.stack([fs[int(k)].log_potential for k in g.factor_ids]) for g in self.groups]

    def constant(self, mrf: DiscreteMRF, dtype: Any) -> jax.Array:
        """Sum of the arity-0 factors' log-potentials (0 when there are none)."""
        total = jnp.zeros((), dtype)
        for k in self.constant_ids:
            total = total + mrf.factors[k].log_potential.astype(dtype)
        return total

    def log_score(self, tables: Sequence[jax.Array], x: jax.Array) -> jax.Array:
        """``Σ_k log ψ_k(x_{C_k})`` of one configuration (arity-0 factors excluded)."""
        total = jnp.zeros((), tables[0].dtype if tables else jnp.float32)
        for g, t in zip(self.groups, tables, strict=True):
            idx = (np.arange(len(g.factor_ids)),) + tuple(x[g.scopes[:, j]] for j in range(len(g.shape)))
            total = total + jnp.sum(t[idx])
        return total

    def incidences(self, variables: np.ndarray) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
        """Slots whose variable lies in ``variables``.

        Returns:
          A list of ``(group, slot, rows_in_group, position_in_variables)``:
          factor row ``rows_in_group[e]`` of group ``group`` has
          ``variables[position_in_variables[e]]`` in slot ``slot``.
        """
        pos = np.full(self.num_variables, -1, dtype=np.int64)
        pos[np.asarray(variables, dtype=np.int64)] = np.arange(len(variables))
        out = []
        for gi, g in enumerate(self.groups):
            for j in range(len(g.shape)):
                p = pos[g.scopes[:, j]]
                rows = np.nonzero(p >= 0)[0].astype(np.int32)
                if rows.size:
                    out.append((gi, j, rows, p[rows].astype(np.int32)))
        return out


def slot_contributions(
    table: jax.Array, scopes: np.ndarray, rows: np.ndarray, slot: int, x: jax.Array
) -> jax.Array:
    """``log ψ(x_{C \\ v}, x_v = ·)`` for the factors ``rows`` of one group, as ``(E, K_slot)``.

    Every other slot is fixed at its value in ``x``; the ``slot`` axis is kept.
    """
    m = scopes.shape[1]
    moved = jnp.moveaxis(table, 1 + slot, -1)
    idx = (rows,) + tuple(x[scopes[rows, l]] for l in range(m) if l != slot)
    return moved[idx]
