"""Bayesian networks as discrete MRFs on their moral graph.

A Bayesian network on a DAG ``G`` has joint ``p(x) = Π_i p(x_i | x_pa(i))``.
Each conditional probability table (CPD) is a factor on the family
``{i} ∪ pa(i)``, a clique of the moral graph (parents married, directions
dropped), so the same joint is an undirected model on the moral graph with
``Z = 1`` (Koller & Friedman, 2009, Prop. 4.1; Lauritzen, 1996, §3.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import networkx as nx
import numpy as np

from umrf._validation import is_concrete
from umrf.graphs import moralize
from umrf.models._discrete_mrf import DiscreteMRF, Factor


def from_bayesian_network(
    dag: nx.DiGraph, cpds: Mapping[int, Any], *, atol: float = 1e-5
) -> DiscreteMRF:
    """The directed model ``Π_i p(x_i | x_pa(i))`` as a ``DiscreteMRF`` on the moral graph.

    CPD layout: ``cpds[i]`` is an array of shape
    ``(K_{p_1}, …, K_{p_m}, K_i)`` where ``p_1 < … < p_m`` are the parents of
    ``i`` in increasing order; entry ``[x_{p_1}, …, x_{p_m}, x_i]`` is
    ``p(x_i | x_pa(i))``, so every slice along the last axis sums to one. A
    root's CPD is its marginal, shape ``(K_i,)``. Zeros become ``−inf``
    log-potentials (hard zeros). Factor ``k`` of the result is node ``k``'s CPD
    with scope ``(p_1, …, p_m, i)``; ``log Z = 0``.

    Args:
      dag: a networkx ``DiGraph`` with nodes exactly ``0..n−1``.
      cpds: one table per node, keyed by node. Concrete tables are checked;
        traced tables (inside ``jit``) are taken as valid.
      atol: tolerance of the sum-to-one check.

    Returns:
      A ``DiscreteMRF`` whose ``graph`` is ``umrf.graphs.moralize(dag)``.

    Raises:
      TypeError: ``dag`` is not a ``DiGraph`` or ``cpds`` is not a mapping.
      ValueError: a cycle (named in the message), nodes other than ``0..n−1``,
        a missing or unknown CPD, a table of the wrong shape, or a CPD with
        negative entries or slices that do not sum to one.

    Examples:
      >>> import networkx as nx
      >>> dag = nx.DiGraph([(0, 1)])
      >>> mrf = from_bayesian_network(dag, {0: [0.3, 0.7], 1: [[0.9, 0.1], [0.2, 0.8]]})
      >>> mrf.scopes
      ((0,), (0, 1))
    """
    moral = moralize(dag)  # checks that `dag` is a DAG (the error names the cycle)
    if not isinstance(cpds, Mapping):
        raise TypeError(f"`cpds` must be a mapping {{node: table}}; got {type(cpds).__name__}.")
    n = dag.number_of_nodes()
    if set(dag.nodes) != set(range(n)):
        raise ValueError(
            f"`dag` nodes must be exactly 0..{n - 1} (variable indices); got "
            f"{sorted(dag.nodes, key=repr)[:8]}. Relabel with nx.convert_node_labels_to_integers."
        )
    missing = [v for v in range(n) if v not in cpds]
    unknown = [k for k in cpds if k not in dag]
    if missing or unknown:
        raise ValueError(
            f"`cpds` must give one table per node of `dag`: missing {missing[:5]}, "
            f"unknown nodes {unknown[:5]}."
        )
    if not atol >= 0:
        raise ValueError(f"`atol` must be >= 0; got {atol!r}.")
    tables = {v: cpds[v] if not is_concrete(cpds[v]) else np.asarray(cpds[v]) for v in range(n)}
    cards = []
    for v in range(n):
        if tables[v].ndim < 1:
            raise ValueError(f"`cpds[{v}]` must have at least one axis (the states of {v}).")
        cards.append(int(tables[v].shape[-1]))
    factors = []
    for v in range(n):
        parents = tuple(sorted(dag.predecessors(v)))
        t = tables[v]
        want = (*(cards[p] for p in parents), cards[v])
        if tuple(t.shape) != want:
            raise ValueError(
                f"`cpds[{v}]` has shape {tuple(t.shape)} but node {v} with parents {parents} "
                f"needs shape {want} (parents in increasing order, then the node's own states)."
            )
        if isinstance(t, np.ndarray):
            t64 = t.astype(np.float64)
            if not np.all(np.isfinite(t64)) or np.any(t64 < 0):
                raise ValueError(f"`cpds[{v}]` must hold finite probabilities >= 0.")
            sums = t64.sum(axis=-1)
            if not np.allclose(sums, 1.0, rtol=0.0, atol=atol):
                worst = float(np.max(np.abs(sums - 1.0)))
                raise ValueError(
                    f"`cpds[{v}]` rows must sum to one over the last axis (the states of node "
                    f"{v}); the worst row is off by {worst:.3g}. Normalise the table."
                )
            factors.append(Factor.from_potential((*parents, v), t64))
        else:
            factors.append(Factor((*parents, v), jnp.log(t)))
    return DiscreteMRF(cards, factors, graph=moral)
