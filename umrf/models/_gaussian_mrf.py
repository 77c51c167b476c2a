"""Gaussian Markov random field whose precision matrix follows an undirected graph.

For a graph ``G = (V, E)`` with ``n`` nodes, the precision ``Λ`` has
non-zeros only on the diagonal and on the edges, and

    E(x) = ½ (x - μ)ᵀ Λ (x - μ)
         = ½ Σ_i Λ_ii (x_i - μ_i)² + Σ_{(i,j) ∈ E} Λ_ij (x_i - μ_i)(x_j - μ_j),

a sum of node and edge potentials (pairwise MRF). A zero ``Λ_ij`` is the
conditional independence ``x_i ⊥ x_j | x_rest`` (Hammersley–Clifford).
``log Z = (n/2) log(2π) - ½ log det Λ`` (at ``T = 1``; see
:meth:`log_partition` for other temperatures).

Leaves (traced numbers): ``mean`` (n,), ``diagonal`` (n,), ``edge_weights``
(m,). Static structure (aux data): the node order and the edge list, taken
from ``graph.nodes`` / ``graph.edges`` once. The energy is evaluated in the
sparse form above, O(n + m).

Reference: Rue & Held (2005), Gaussian Markov Random Fields, Chapman & Hall, §2.2.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from umrf._validation import check_finite, check_positive, is_concrete
from umrf.models._gaussian import Gaussian, check_point, check_spd

__all__ = ["GaussianMRF"]


def _structure(graph: Any) -> tuple[tuple[Any, ...], tuple[tuple[int, int], ...]]:
    if not isinstance(graph, nx.Graph) or graph.is_directed():
        raise TypeError(
            "`graph` must be an undirected networkx.Graph; got "
            f"{type(graph).__name__}. Use graph.to_undirected() for a directed graph."
        )
    if graph.is_multigraph():
        raise TypeError("`graph` must be a simple networkx.Graph, not a multigraph.")
    if graph.number_of_nodes() == 0:
        raise ValueError("`graph` has no nodes.")
    if nx.number_of_selfloops(graph):
        raise ValueError(
            "`graph` has self-loops; the diagonal of the precision is always present, "
            "remove them with graph.remove_edges_from(nx.selfloop_edges(graph))."
        )
    nodes = tuple(graph.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    edges = tuple(sorted(tuple(sorted((index[u], index[v]))) for u, v in graph.edges))
    return nodes, edges


@jax.tree_util.register_pytree_node_class
class GaussianMRF:
    """Gaussian MRF with precision supported on ``graph`` (a pytree, its own params).

    Args:
      graph: undirected ``networkx.Graph``; node ``i`` of the vector ``x`` is
        ``list(graph.nodes)[i]``.
      precision: dense ``(n, n)`` symmetric positive definite matrix whose
        off-diagonal non-zeros lie on edges of ``graph`` only (validated).
      mean: ``μ``, shape ``(n,)`` (default zeros).

    Examples:
      >>> import networkx as nx, jax.numpy as jnp, umrf
      >>> g = nx.path_graph(3)
      >>> lam = jnp.array([[2.0, -0.5, 0.0], [-0.5, 2.0, -0.5], [0.0, -0.5, 2.0]])
      >>> mrf = umrf.models.GaussianMRF(g, lam)
      >>> mrf.edges
      ((0, 1), (1, 2))
    """

    def __init__(self, graph: Any, precision: Any, mean: Any = None) -> None:
        nodes, edges = _structure(graph)
        n = len(nodes)
        precision = jnp.asarray(precision)
        if precision.shape != (n, n):
            raise ValueError(
                f"`precision` must have shape ({n}, {n}) for a graph with {n} nodes; "
                f"got {precision.shape}."
            )
        if is_concrete(precision):
            p = np.asarray(precision, dtype=np.float64)
            allowed = np.eye(n, dtype=bool)
            for i, j in edges:
                allowed[i, j] = allowed[j, i] = True
            off = np.argwhere(~allowed & (p != 0))
            if off.size:
                i, j = off[0]
                raise ValueError(
                    f"`precision` has a non-zero entry at ({nodes[i]!r}, {nodes[j]!r}), which is "
                    "not an edge of `graph`; add the edge or set the entry to 0."
                )
        check_spd("precision", precision)
        mean = jnp.zeros(n, precision.dtype) if mean is None else jnp.asarray(mean)
        if mean.shape != (n,):
            raise ValueError(f"`mean` must have shape ({n},); got {mean.shape}.")
        check_finite("mean", mean)
        rows = np.array([e[0] for e in edges], dtype=np.int32)
        cols = np.array([e[1] for e in edges], dtype=np.int32)
        self.nodes, self.edges = nodes, edges
        self.mean = mean
        self.diagonal = jnp.diagonal(precision)
        self.edge_weights = precision[rows, cols]

    # pytree -------------------------------------------------------------
    def tree_flatten(self) -> tuple[tuple[Any, Any, Any], tuple[Any, Any]]:
        """Leaves ``(mean, diagonal, edge_weights)``; aux ``(nodes, edges)``."""
        return (self.mean, self.diagonal, self.edge_weights), (self.nodes, self.edges)

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, Any], children: tuple[Any, Any, Any]) -> GaussianMRF:
        """Rebuild without validation (leaves may be tracers)."""
        obj = object.__new__(cls)
        obj.nodes, obj.edges = aux
        obj.mean, obj.diagonal, obj.edge_weights = children
        return obj

    def __repr__(self) -> str:
        return f"GaussianMRF(nodes={len(self.nodes)}, edges={len(self.edges)})"

    # model --------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of nodes ``n``."""
        return len(self.nodes)

    def _index(self) -> tuple[np.ndarray, np.ndarray]:
        rows = np.array([e[0] for e in self.edges], dtype=np.int32)
        cols = np.array([e[1] for e in self.edges], dtype=np.int32)
        return rows, cols

    @property
    def precision(self) -> jax.Array:
        """Dense ``Λ`` (diagonal plus symmetric edge entries)."""
        rows, cols = self._index()
        lam = jnp.diag(self.diagonal)
        lam = lam.at[rows, cols].set(self.edge_weights)
        return lam.at[cols, rows].set(self.edge_weights)

    def energy(self, x: Any) -> jax.Array:
        """Sparse ``½ Σ_i Λ_ii r_i² + Σ_(i,j)∈E Λ_ij r_i r_j`` with ``r = x - μ``."""
        r = check_point(x, self.dim, "GaussianMRF.energy") - self.mean
        rows, cols = self._index()
        pair = jnp.sum(self.edge_weights * r[rows] * r[cols]) if self.edges else 0.0
        return 0.5 * jnp.sum(self.diagonal * jnp.square(r)) + pair

    def log_partition(self, *, temperature: float = 1.0) -> jax.Array:
        """``log Z(T) = (n/2) log(2πT) - ½ log det Λ`` via a Cholesky factor."""
        check_positive("temperature", temperature)
        chol = jnp.linalg.cholesky(self.precision)
        half_logdet = jnp.sum(jnp.log(jnp.diagonal(chol)))
        return 0.5 * self.dim * jnp.log(2.0 * math.pi * jnp.asarray(temperature)) - half_logdet

    def log_prob(self, x: Any, *, temperature: float = 1.0) -> jax.Array:
        """Normalised ``log p(x) = -E(x)/T - log Z(T)``."""
        return -self.energy(x) / temperature - self.log_partition(temperature=temperature)

    def to_gaussian(self) -> Gaussian:
        """The same law as a dense :class:`umrf.models.Gaussian`."""
        return Gaussian.tree_unflatten(None, (self.mean, self.precision))

    def sample(
        self, key: jax.Array, shape: tuple[int, ...] = (), *, temperature: float = 1.0
    ) -> Any:
        """Exact samples (dense Cholesky), shape ``shape + (n,)``."""
        return self.to_gaussian().sample(key, shape, temperature=temperature)
