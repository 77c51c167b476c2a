"""Moralisation of a directed acyclic graph.

The moral graph of a DAG joins ("marries") every pair of parents of a common
child and drops the arrow directions. Each family ``{i} ∪ pa(i)`` is then a
clique, so ``Π_i p(x_i | x_pa(i))`` factorises on the moral graph
(Lauritzen, 1996, §3.2.1; Koller & Friedman, 2009, Def. 4.16).
"""

from __future__ import annotations

import networkx as nx

from umrf.graphs._nodes import check_graph


def check_dag(name: str, dag: nx.DiGraph) -> None:
    """Raise ``TypeError`` for a non-directed graph and ``ValueError`` naming a cycle."""
    check_graph(name, dag, directed=True)
    try:
        cycle = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        return
    path = " -> ".join(repr(u) for u, _ in cycle) + f" -> {cycle[0][0]!r}"
    raise ValueError(
        f"`{name}` is not acyclic: it has the cycle {path}; a Bayesian network needs a DAG "
        "(remove or reverse an edge of the cycle)."
    )


def moralize(dag: nx.DiGraph) -> nx.Graph:
    """The moral graph of a DAG: marry the parents, drop the directions.

    Args:
      dag: a directed acyclic networkx graph.

    Returns:
      A new undirected ``nx.Graph`` on the same nodes.

    Raises:
      TypeError: ``dag`` is not a directed graph.
      ValueError: ``dag`` has a cycle (the message names one).

    Examples:
      >>> import networkx as nx
      >>> sorted(tuple(sorted(e)) for e in moralize(nx.DiGraph([(0, 2), (1, 2)])).edges())
      [(0, 1), (0, 2), (1, 2)]
    """
    check_dag("dag", dag)
    g = nx.Graph()
    g.add_nodes_from(dag.nodes)
    g.add_edges_from((u, v) for u, v in dag.edges if u != v)
    for child in dag.nodes:
        parents = list(dag.predecessors(child))
        g.add_edges_from((p, q) for i, p in enumerate(parents) for q in parents[i + 1 :] if p != q)
    return g
