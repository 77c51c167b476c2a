"""Cliques and maximal cliques of an undirected graph.

A clique is a totally connected subset of vertices; a maximal clique is one
that no strictly larger clique contains (Koller & Friedman, 2009, §4.2;
maximal cliques are enumerated with the Bron–Kerbosch algorithm,
Bron & Kerbosch, 1973, as implemented in networkx).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import networkx as nx

from umrf.graphs._nodes import check_graph, node_set


def _sorted(nodes: Iterable[Hashable]) -> tuple:
    try:
        return tuple(sorted(nodes))
    except TypeError:  # mixed, unorderable labels
        return tuple(sorted(nodes, key=repr))


def cliques(g: nx.Graph) -> list[tuple[Any, ...]]:
    """Every non-empty clique of ``g`` (all singletons, edges, triangles, …).

    Args:
      g: an undirected networkx graph.

    Returns:
      A list of sorted node tuples, ordered by size, then lexicographically.
      The number of cliques can grow exponentially with the clique number.

    Examples:
      >>> import networkx as nx
      >>> cliques(nx.complete_graph(3))
      [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    """
    check_graph("g", g)
    out = [_sorted(c) for c in nx.enumerate_all_cliques(g)]
    return sorted(out, key=lambda c: (len(c), c))


def maximal_cliques(g: nx.Graph) -> list[tuple[Any, ...]]:
    """The maximal cliques of ``g`` (isolated nodes are maximal cliques of size one).

    Args:
      g: an undirected networkx graph.

    Returns:
      A list of sorted node tuples, ordered by size (largest first), then
      lexicographically.

    Examples:
      >>> import networkx as nx
      >>> maximal_cliques(nx.path_graph(3))
      [(0, 1), (1, 2)]
    """
    check_graph("g", g)
    out = [_sorted(c) for c in nx.find_cliques(g)]
    return sorted(out, key=lambda c: (-len(c), c))


def is_clique(g: nx.Graph, nodes: Iterable[Hashable]) -> bool:
    """Return True when ``nodes`` are pairwise adjacent in ``g`` (the empty set is a clique).

    Raises:
      ValueError: a node of ``nodes`` is not in ``g``.
    """
    check_graph("g", g)
    ns = list(node_set(g, "nodes", nodes))
    return all(g.has_edge(a, b) for i, a in enumerate(ns) for b in ns[i + 1 :])
