"""Static, vectorisable index structure of a :class:`DiscreteMRF` (the shared home).

Gibbs sampling, mean-field and loopy belief propagation all need the same
bookkeeping: which factor touches which variable in which slot. Looping over
factors in Python inside traced code makes programs whose size grows with the
model (a 50×50 grid has ~7 500 factors), so factors are grouped by their
arity ``m``: every group is one stacked table of shape ``(F_g, K_1, …, K_m)``
(each table padded with ``-inf`` to the group's largest cardinality per slot, so
padded states carry no mass) plus an ``(F_g, m)`` integer array of scopes, and
one message/conditional computation is a handful of batched gathers per group
and slot. Everything here is numpy computed once, outside ``jit`` (DESIGN.md §5).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf.models import DiscreteMRF

# Packed tables kept per model structure (see FactorGroups.tables).
_PACKED_CACHE_SIZE = 2


class FactorGroup(NamedTuple):
    """Factors of one arity, tables padded to a common shape.

    Attributes:
      shape: the padded slot cardinalities ``(K_1, …, K_m)`` (per-slot maxima).
      factor_ids: ``(F,)`` indices into ``mrf.factors``.
      scopes: ``(F, m)`` variable indices, one row per factor.
      true_shapes: each factor's own table shape.
    """

    shape: tuple[int, ...]
    factor_ids: np.ndarray
    scopes: np.ndarray
    true_shapes: tuple[tuple[int, ...], ...]


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
      pack_index: the numpy gather index of :func:`pack_factor_tables`.
      plans: per-algorithm static data (e.g. BP's edge indexing), filled lazily.
    """

    def __init__(self, mrf: DiscreteMRF):
        self.cardinalities = tuple(mrf.cardinalities)
        self.num_variables = len(self.cardinalities)
        self.max_card = max(self.cardinalities, default=1)
        self.structure = structure_of(mrf)
        by_arity: dict[int, list[int]] = {}
        self.constant_ids: list[int] = []
        for k, f in enumerate(mrf.factors):
            if len(f.scope) == 0:
                self.constant_ids.append(k)
                continue
            by_arity.setdefault(len(f.scope), []).append(k)
        self.groups: list[FactorGroup] = []
        for _, ids in sorted(by_arity.items()):
            scopes = np.asarray([mrf.factors[k].scope for k in ids], dtype=np.int32)
            true = tuple(tuple(self.cardinalities[v] for v in mrf.factors[k].scope) for k in ids)
            shape = tuple(int(s) for s in np.max(np.asarray(true), axis=0))
            self.groups.append(FactorGroup(shape, np.asarray(ids, dtype=np.int32), scopes, true))
        cards = np.asarray(self.cardinalities, dtype=np.int32)
        self.state_mask = np.arange(self.max_card)[None, :] < cards[:, None]
        self.pack_index = _pack_index(self, flat_offsets(mrf))
        self.plans: dict[str, Any] = {}  # per-algorithm static data, built once per structure
        # The last few packings of concrete tables, keyed on the identity of the leaves
        # (see tables()); each entry holds its leaves, so an id cannot be reused.
        self._packed: OrderedDict[tuple, tuple[tuple, list[jax.Array]]] = OrderedDict()

    def tables(self, mrf: DiscreteMRF, pad_value: float = -np.inf) -> list[jax.Array]:
        """Stacked log-potential tables, one ``(F_g, K_1, …, K_m)`` array per group.

        A table smaller than the group's shape is padded with ``pad_value``
        (``-inf``: no mass; mean-field pads with 0, as its weights vanish there).

        When no log-potential is a tracer (the usual eager call), the tables are
        packed in numpy and moved to the device as one array per group, so no
        per-factor operation enters any compiled program (XLA compiles a
        concatenation of thousands of operands very slowly). That packing is a
        Python loop over the factors (about 2 µs each), so the last few results
        are kept, keyed on the identity of the log-potential leaves: jax arrays
        are immutable, so the same leaf objects mean the same tables, and a model
        queried again (other settings, more iterations) is not repacked. Under
        an outer ``jit``/``grad``/``vmap`` the leaves are tracers and the tables
        are stacked with ``jnp`` ops instead, so derivatives and batching flow
        through.
        """
        fs = mrf.factors
        if not any(isinstance(f.log_potential, jax.core.Tracer) for f in fs):
            leaves = tuple(f.log_potential for f in fs)
            cacheable = all(isinstance(x, jax.Array) for x in leaves)  # immutable leaves only
            key = (tuple(map(id, leaves)), float(pad_value)) if cacheable else None
            hit = self._packed.get(key) if cacheable else None
            if hit is not None:
                self._packed.move_to_end(key)
                return hit[1]
            # jnp.result_type is a join: one representative per (type, dtype, weak
            # type) gives the same answer without visiting thousands of leaves.
            reps = {
                (type(x), getattr(x, "dtype", None), getattr(x, "weak_type", None)): x
                for x in leaves
            }
            dtype = jnp.result_type(*reps.values(), jnp.float32)
            packed = [jnp.asarray(t) for t in self._host_tables(mrf, dtype, pad_value)]
            if cacheable:
                self._packed[key] = (leaves, packed)
                while len(self._packed) > _PACKED_CACHE_SIZE:
                    self._packed.popitem(last=False)
            return packed
        dtype = jnp.result_type(*(f.log_potential for f in fs), jnp.float32)
        out = []
        for g in self.groups:
            parts = []
            for k, true in zip(g.factor_ids, g.true_shapes, strict=True):
                t = jnp.asarray(fs[int(k)].log_potential, dtype)
                if true != g.shape:
                    pad = [(0, a - b) for a, b in zip(g.shape, true, strict=True)]
                    t = jnp.pad(t, pad, constant_values=pad_value)
                parts.append(t)
            out.append(jnp.stack(parts))
        return out

    def _host_tables(self, mrf: DiscreteMRF, dtype: Any, pad_value: float) -> list[np.ndarray]:
        """:meth:`tables` packed in numpy from concrete log-potentials.

        ``np.asarray`` of a jax array caches its host copy, and a table object shared
        by many factors is converted once.
        """
        host: dict[int, np.ndarray] = {}
        fs = mrf.factors
        out = []
        for g in self.groups:
            rows = []
            for k in g.factor_ids:
                leaf = fs[int(k)].log_potential
                t = host.get(id(leaf))
                if t is None:
                    t = host[id(leaf)] = np.asarray(leaf)
                rows.append(t)
            if all(true == g.shape for true in g.true_shapes):
                out.append(np.stack(rows).astype(dtype, copy=False))
                continue
            buf = np.full((len(rows),) + g.shape, pad_value, dtype)
            for r, (t, true) in enumerate(zip(rows, g.true_shapes, strict=True)):
                buf[(r,) + tuple(slice(0, a) for a in true)] = t
            out.append(buf)
        return out

    @staticmethod
    def unpad(g: FactorGroup, row: int, table: jax.Array) -> jax.Array:
        """Cut a padded per-factor table back to factor ``g.factor_ids[row]``'s own shape."""
        return table[tuple(slice(0, k) for k in g.true_shapes[row])]

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
            idx = (np.arange(len(g.factor_ids)),) + tuple(
                x[g.scopes[:, j]] for j in range(len(g.shape))
            )
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


_GROUPS_CACHE: OrderedDict[tuple[Any, ...], FactorGroups] = OrderedDict()
_GROUPS_CACHE_SIZE = 32


def groups_for(mrf: DiscreteMRF) -> FactorGroups:
    """The :class:`FactorGroups` of ``mrf``'s structure, built once and cached (LRU).

    Algorithms pass the returned object as a static ``jit`` argument, so MRFs of
    one structure share one compiled program.
    """
    key = structure_of(mrf)
    fg = _GROUPS_CACHE.get(key)
    if fg is None:
        fg = FactorGroups(mrf)
        _GROUPS_CACHE[key] = fg
        while len(_GROUPS_CACHE) > _GROUPS_CACHE_SIZE:
            _GROUPS_CACHE.popitem(last=False)
    else:
        _GROUPS_CACHE.move_to_end(key)
    return fg


def flat_offsets(mrf: DiscreteMRF) -> np.ndarray:
    """Start of factor ``k``'s raveled table in the flat factor layout (length ``K + 1``)."""
    sizes = [int(np.prod(f.log_potential.shape, dtype=np.int64)) for f in mrf.factors]
    return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])


def _pack_index(fg: FactorGroups, offsets: np.ndarray) -> np.ndarray:
    """Gather index of :func:`pack_factor_tables` (numpy, computed once per structure)."""
    index = np.zeros(int(offsets[-1]), np.int64)
    base = 0
    for g in fg.groups:
        strides = np.asarray(
            [int(np.prod(g.shape[a + 1 :], dtype=np.int64)) for a in range(len(g.shape))]
        )
        block = int(np.prod(g.shape, dtype=np.int64))
        for r, (k, true) in enumerate(zip(g.factor_ids, g.true_shapes, strict=True)):
            cells = np.indices(true).reshape(len(true), -1)
            index[offsets[k] : offsets[k + 1]] = base + r * block + strides @ cells
        base += block * len(g.factor_ids)
    for k in fg.constant_ids:
        index[offsets[k]] = base  # arity-0 factors: belief 1
    return index


def pack_factor_tables(fg: FactorGroups, group_tables: list[jax.Array]) -> jax.Array:
    """Flatten per-group ``(F_g, …)`` tables into ONE vector in factor order (one gather).

    Factor ``k``'s table (its own, unpadded shape) occupies
    ``flat[offsets[k]:offsets[k + 1]]`` in row-major order, see :func:`flat_offsets`.
    Returning one array instead of one output per factor keeps the compiled
    program small (XLA compiles thousands of tiny outputs very slowly). The
    gather index is the numpy ``fg.pack_index``, built with ``fg``.
    """
    dtype = group_tables[0].dtype if group_tables else jnp.float32
    pieces = [jnp.ravel(t) for t in group_tables] + [jnp.ones((1,), dtype)]
    return jnp.concatenate(pieces)[fg.pack_index]


def unpack_factor_tables(mrf: DiscreteMRF, flat: jax.Array) -> tuple[jax.Array, ...]:
    """Split a flat factor-order vector into one table per factor (shapes of ``mrf``'s factors)."""
    offsets = flat_offsets(mrf)
    return tuple(
        flat[offsets[k] : offsets[k + 1]].reshape(f.log_potential.shape)
        for k, f in enumerate(mrf.factors)
    )


# Accessors shared by the packed results of mean-field and loopy BP: both hold
# ``variables`` as an ``(n, K_max)`` zero-padded array and ``factors`` as one
# flat vector in the layout of :func:`flat_offsets`. Assigned as methods of
# ``MeanFieldResult`` and ``BeliefPropagationResult``.


def packed_variable(result: Any, mrf: DiscreteMRF, i: int) -> jax.Array:
    """Variable ``i``'s marginal as a vector of length ``K_i``."""
    return result.variables[i, : mrf.cardinalities[i]]


def packed_factor(result: Any, mrf: DiscreteMRF, k: int) -> jax.Array:
    """Factor ``k``'s table, shaped like ``mrf.factors[k].log_potential``."""
    off = flat_offsets(mrf)
    return result.factors[off[k] : off[k + 1]].reshape(mrf.factors[k].log_potential.shape)


def packed_factor_tables(result: Any, mrf: DiscreteMRF) -> tuple[jax.Array, ...]:
    """All factor tables, one per factor (many small arrays: use outside jit)."""
    return unpack_factor_tables(mrf, result.factors)
