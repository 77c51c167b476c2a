"""Discrete Markov random fields as pytrees of log-potential tables.

A ``DiscreteMRF`` represents ``p(x) = (1/Z) Π_C ψ_C(x_C)`` over variables
``x_i ∈ {0, …, K_i − 1}``. It stores ``log ψ_C`` tables (``-inf`` is a hard
zero). Its pytree leaves are those tables; its structure (cardinalities,
scopes, graph) is static aux data (DESIGN.md §5), so
``jax.grad(umrf.inference.log_partition)(mrf)`` returns an ``DiscreteMRF``
of factor marginals and a new MRF of the same structure never recompiles.

Energy convention (DESIGN.md §1): ``E(x) = -Σ_C log ψ_C(x_C)``.

References:
  Koller & Friedman, *Probabilistic Graphical Models*, 2009, ch. 4.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from umrf._validation import check_discrete_position, is_concrete


def broadcast_table(
    table: jax.Array, scope: tuple[int, ...], target: tuple[int, ...], cards: Sequence[int]
) -> jax.Array:
    """Broadcast a table on ``scope`` to the full shape of ``target ⊇ scope`` (axes reordered)."""
    perm = sorted(range(len(scope)), key=lambda a: target.index(scope[a]))
    t = jnp.transpose(table, perm) if perm != list(range(len(scope))) else table
    shape = tuple(cards[v] if v in scope else 1 for v in target)
    return jnp.broadcast_to(jnp.reshape(t, shape), tuple(cards[v] for v in target))


@jax.tree_util.register_pytree_node_class
class Factor:
    """A log-potential table ``log ψ_C`` on an ordered scope of variables.

    Attributes:
      scope: tuple of distinct variable indices ``C = (v_1, …, v_m)``.
      log_potential: array of shape ``(K_{v_1}, …, K_{v_m})``; entry
        ``[x_{v_1}, …, x_{v_m}]`` is ``log ψ_C(x_C)``. ``-inf`` is a hard zero.
    """

    __slots__ = ("scope", "log_potential")

    def __init__(self, scope: Iterable[int], log_potential: Any):
        """Build a factor; see the class docstring.

        Integer or boolean tables are cast to ``float32``.

        Raises:
          ValueError: repeated or negative variables in ``scope``, a table whose
            rank differs from ``len(scope)``, or a concrete table with NaN or
            ``+inf`` entries.
        """
        scope = tuple(int(v) for v in scope)
        if len(set(scope)) != len(scope):
            raise ValueError(f"Factor `scope` {scope} repeats a variable; list each variable once.")
        if any(v < 0 for v in scope):
            raise ValueError(f"Factor `scope` {scope} has a negative variable index.")
        table = (
            log_potential
            if isinstance(log_potential, jax.core.Tracer)
            else jnp.asarray(log_potential)
        )
        if table.ndim != len(scope):
            raise ValueError(
                f"Factor `log_potential` has {table.ndim} axes but `scope` {scope} has "
                f"{len(scope)} variables; give one axis per scope variable."
            )
        if not jnp.issubdtype(table.dtype, jnp.inexact):
            table = table.astype(jnp.float32)
        if is_concrete(table):
            if bool(jnp.any(jnp.isnan(table))):
                raise ValueError("Factor `log_potential` contains NaN; use -inf for a hard zero.")
            if bool(jnp.any(table == jnp.inf)):
                raise ValueError(
                    "Factor `log_potential` contains +inf (an infinite potential); "
                    "log-potentials must be finite or -inf (a hard zero)."
                )
        self.scope = scope
        self.log_potential = table

    @classmethod
    def from_potential(cls, scope: Iterable[int], potential: Any) -> Factor:
        """Build a factor from a linear-space table ``ψ_C ≥ 0`` (zeros become ``-inf``).

        Args:
          scope: the factor's variables.
          potential: a non-negative table of shape ``(K_{v_1}, …, K_{v_m})``.

        Raises:
          ValueError: if any entry of ``potential`` is negative or not finite.
          TypeError: if ``potential`` is a tracer.

        Examples:
          >>> f = Factor.from_potential((0, 1), [[1.0, 0.0], [2.0, 1.0]])
          >>> f.log_potential[0, 1].item()
          -inf
        """
        if isinstance(potential, jax.core.Tracer):
            raise TypeError(
                "`potential` must be concrete (numpy or a concrete array); inside jit pass "
                "log-potentials to `Factor(scope, jnp.log(potential))`."
            )
        arr = np.asarray(potential, dtype=np.float64)
        if np.any(~np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(
                "`potential` must be finite and non-negative (a potential is ψ_C(x_C) ≥ 0); "
                "pass log-potentials to `Factor(scope, log_potential)` instead."
            )
        with np.errstate(divide="ignore"):
            return cls(scope, jnp.asarray(np.log(arr), dtype=jnp.float32))

    def tree_flatten(self):  # noqa: D102
        return (self.log_potential,), self.scope

    @classmethod
    def tree_unflatten(cls, scope, children):  # noqa: D102
        obj = object.__new__(cls)
        obj.scope = scope
        obj.log_potential = children[0]
        return obj

    def __repr__(self) -> str:
        shape = getattr(self.log_potential, "shape", None)
        return f"Factor(scope={self.scope}, shape={shape})"


@jax.tree_util.register_pytree_node_class
class DiscreteMRF:
    """A discrete MRF ``p(x) ∝ Π_k ψ_k(x_{C_k})``; a pytree of log-potential tables.

    Attributes:
      cardinalities: ``K_i`` for each variable ``i = 0, …, n−1``.
      factors: tuple of :class:`Factor`.
      edges: static undirected edges of the model's graph (sorted pairs).
    """

    __slots__ = ("cardinalities", "factors", "edges")

    def __init__(
        self,
        cardinalities: Sequence[int],
        factors: Sequence[Factor],
        graph: nx.Graph | None = None,
    ):
        """Build an MRF and validate its structure before any tracing.

        Args:
          cardinalities: number of states of each variable (all ≥ 1).
          factors: the factors; each table's shape must equal the
            cardinalities of its scope.
          graph: optional undirected graph on nodes ``0..n-1``. When given,
            every scope must be a clique of it (the factorisation in the
            lecture's definition); when omitted, the graph is the union of
            complete graphs over the scopes.

        Raises:
          ValueError: a bad cardinality, a variable out of range, a table of
            the wrong shape, or a scope that is not a clique of ``graph``.
        """
        if isinstance(cardinalities, int | np.integer):
            raise TypeError(
                "`cardinalities` must be a sequence with one int per variable, e.g. [2] * n."
            )
        if any(isinstance(k, bool) or not isinstance(k, int | np.integer) for k in cardinalities):
            raise TypeError(f"`cardinalities` must be ints; got {list(cardinalities)!r}.")
        cards = tuple(int(k) for k in cardinalities)
        if any(k < 1 for k in cards):
            raise ValueError(f"`cardinalities` must all be >= 1; got {cards}.")
        n = len(cards)
        factors = tuple(factors)
        for k, f in enumerate(factors):
            if not isinstance(f, Factor):
                raise TypeError(
                    f"`factors[{k}]` is a {type(f).__name__}; wrap it in umrf.models.Factor."
                )
            if any(v >= n for v in f.scope):
                raise ValueError(
                    f"`factors[{k}]` scope {f.scope} names a variable >= {n} = len(cardinalities)."
                )
            want = tuple(cards[v] for v in f.scope)
            if tuple(f.log_potential.shape) != want:
                raise ValueError(
                    f"`factors[{k}]` table has shape {tuple(f.log_potential.shape)} but its scope "
                    f"{f.scope} has cardinalities {want}; reshape the table to {want}."
                )
        if graph is None:
            edge_set = {
                (min(a, b), max(a, b))
                for f in factors
                for i, a in enumerate(f.scope)
                for b in f.scope[i + 1 :]
            }
        else:
            if not isinstance(graph, nx.Graph) or graph.is_directed():
                raise TypeError(
                    "`graph` must be an undirected networkx Graph (use umrf.graphs.moralize for "
                    f"a DAG); got {type(graph).__name__}."
                )
            unknown = set(graph.nodes) - set(range(n))
            if unknown:
                raise ValueError(
                    f"`graph` has nodes {sorted(unknown, key=repr)[:5]} outside 0..{n - 1}; "
                    "label nodes by variable index."
                )
            for k, f in enumerate(factors):
                missing = [
                    (a, b)
                    for i, a in enumerate(f.scope)
                    for b in f.scope[i + 1 :]
                    if not graph.has_edge(a, b)
                ]
                if missing:
                    raise ValueError(
                        f"`factors[{k}]` scope {f.scope} is not a clique of `graph` (missing edges "
                        f"{missing[:3]}); add the edges or split the factor."
                    )
            edge_set = {(min(a, b), max(a, b)) for a, b in graph.edges if a != b}
        self.cardinalities = cards
        self.factors = factors
        self.edges = tuple(sorted(edge_set))

    # --- pytree -----------------------------------------------------------------
    def tree_flatten(self):  # noqa: D102
        return tuple(f.log_potential for f in self.factors), (
            self.cardinalities,
            tuple(f.scope for f in self.factors),
            self.edges,
        )

    @classmethod
    def tree_unflatten(cls, aux, children):  # noqa: D102
        cards, scopes, edges = aux
        obj = object.__new__(cls)
        obj.cardinalities = cards
        obj.factors = tuple(
            Factor.tree_unflatten(s, (t,)) for s, t in zip(scopes, children, strict=True)
        )
        obj.edges = edges
        return obj

    # --- structure --------------------------------------------------------------
    @property
    def num_variables(self) -> int:
        """Number of variables ``n``."""
        return len(self.cardinalities)

    @property
    def scopes(self) -> tuple[tuple[int, ...], ...]:
        """The factors' scopes, in order."""
        return tuple(f.scope for f in self.factors)

    @property
    def graph(self) -> nx.Graph:
        """The undirected graph on ``0..n-1`` whose cliques cover every scope (a fresh copy)."""
        g = nx.Graph()
        g.add_nodes_from(range(self.num_variables))
        g.add_edges_from(self.edges)
        return g

    # --- transformations ----------------------------------------------------------
    def condition(
        self, evidence: Mapping[int, Any], *, return_mapping: bool = False
    ) -> DiscreteMRF | tuple[DiscreteMRF, tuple[int, ...]]:
        """Clamp observed variables: the model of ``p(x_free | x_E = e)``.

        Every factor is sliced at the observed states, so the new model's
        unnormalised density on the free variables equals the old one's with
        ``x_E = e`` plugged in: ``p̃'(x_F) = p̃(x_F, e)``. Factors whose scope is
        entirely observed are kept as constant (scope ``()``) factors, so
        ``log Z' − log Z = log p(x_E = e)``.

        Renumbering: the free variables keep their relative order; new
        variable ``j`` is old variable ``kept[j]`` where ``kept`` is the sorted
        tuple of unobserved indices (returned with ``return_mapping=True``).
        The new graph is the subgraph of ``self.graph`` induced on ``kept``.

        Args:
          evidence: ``{variable: state}``; states may be traced int scalars
            (the structure depends only on the keys), concrete ones are checked.
          return_mapping: also return ``kept``.

        Returns:
          The conditioned ``DiscreteMRF`` (and ``kept`` if asked).

        Raises:
          TypeError: ``evidence`` is not a mapping or a key is not an int.
          ValueError: an unknown variable or a state outside ``0..K_i − 1``.

        Examples:
          >>> import jax.numpy as jnp
          >>> mrf = DiscreteMRF([2, 3], [Factor((0, 1), jnp.zeros((2, 3)))])
          >>> small, kept = mrf.condition({0: 1}, return_mapping=True)
          >>> small.cardinalities, kept
          ((3,), (1,))
        """
        if not isinstance(evidence, Mapping):
            raise TypeError(
                f"`evidence` must be a mapping {{variable: state}}; got {type(evidence).__name__}."
            )
        ev: dict[int, Any] = {}
        for v, val in evidence.items():
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise TypeError(f"`evidence` keys must be int variable indices; got {v!r}.")
            v = int(v)
            if not 0 <= v < self.num_variables:
                raise ValueError(
                    f"`evidence` names variable {v}, outside 0..{self.num_variables - 1}."
                )
            if is_concrete(val):
                arr = np.asarray(val)
                if arr.shape != () or not np.issubdtype(arr.dtype, np.integer):
                    raise ValueError(f"`evidence[{v}]` must be an int state; got {val!r}.")
                if not 0 <= int(arr) < self.cardinalities[v]:
                    raise ValueError(
                        f"`evidence[{v}]` = {int(arr)} is outside 0..{self.cardinalities[v] - 1}."
                    )
                val = int(arr)
            ev[v] = val
        kept = tuple(v for v in range(self.num_variables) if v not in ev)
        new_index = {v: j for j, v in enumerate(kept)}
        factors = []
        for f in self.factors:
            table = f.log_potential
            for axis in reversed(range(len(f.scope))):
                v = f.scope[axis]
                if v in ev:
                    table = jax.lax.dynamic_index_in_dim(table, ev[v], axis, keepdims=False)
            scope = tuple(new_index[v] for v in f.scope if v not in ev)
            factors.append(Factor.tree_unflatten(scope, (table,)))
        obj = object.__new__(DiscreteMRF)
        obj.cardinalities = tuple(self.cardinalities[v] for v in kept)
        obj.factors = tuple(factors)
        obj.edges = tuple(
            sorted(
                (new_index[a], new_index[b]) for a, b in self.edges if a not in ev and b not in ev
            )
        )
        return (obj, kept) if return_mapping else obj

    def merge_to_maximal_cliques(self) -> DiscreteMRF:
        """An equal distribution with one factor per maximal clique of ``self.graph``.

        Each factor is added (in log-space) to the first maximal clique, in
        :func:`umrf.graphs.maximal_cliques` order (largest first), that contains
        its scope; a maximal clique that receives no factor gets a table of
        zeros (``ψ = 1``). This is the "maximal cliques only" definition of an
        undirected model (Bishop, 2006, §8.3.2); the unnormalised density, and
        so ``Z``, is unchanged. New scopes are sorted; tables have the full
        clique shape, so the cost grows with the clique sizes.

        Returns:
          A new ``DiscreteMRF`` on the same graph.
        """
        from umrf.graphs import maximal_cliques

        if self.num_variables == 0:
            return self
        cliques = maximal_cliques(self.graph)
        dtype = jnp.result_type(*(f.log_potential for f in self.factors), jnp.float32)
        tables = [jnp.zeros(tuple(self.cardinalities[v] for v in c), dtype) for c in cliques]
        for f in self.factors:
            k = next(i for i, c in enumerate(cliques) if set(f.scope) <= set(c))
            tables[k] = tables[k] + broadcast_table(
                f.log_potential, f.scope, cliques[k], self.cardinalities
            ).astype(dtype)
        return DiscreteMRF(
            self.cardinalities,
            [Factor.tree_unflatten(c, (t,)) for c, t in zip(cliques, tables, strict=True)],
            graph=self.graph,
        )

    # --- energy -----------------------------------------------------------------
    def energy(self, x: jax.Array) -> jax.Array:
        """Energy ``E(x) = -Σ_k log ψ_k(x_{C_k})`` of one int configuration ``x`` of shape ``(n,)``.

        ``+inf`` where a hard-zero potential is hit. Batch with ``jax.vmap``.
        A concrete ``x`` with a state outside ``0..K_i - 1`` raises; a traced
        one (inside ``jit``/``vmap``) gives ``NaN``, never a plausible number.

        Raises:
          ValueError/TypeError: wrong shape, a non-integer dtype, or a concrete
            state outside its variable's range.
        """
        x = check_discrete_position("x", x, self.cardinalities)
        total = jnp.zeros(
            (), dtype=jnp.result_type(*(f.log_potential for f in self.factors), jnp.float32)
        )
        for f in self.factors:
            total = total + f.log_potential[tuple(x[v] for v in f.scope)]
        if isinstance(x, jax.core.Tracer):
            in_range = jnp.all((x >= 0) & (x < jnp.asarray(self.cardinalities, jnp.int32)))
            return jnp.where(in_range, -total, jnp.nan)
        return -total

    def __repr__(self) -> str:
        return f"DiscreteMRF(num_variables={self.num_variables}, num_factors={len(self.factors)})"
