"""Graph separation and Markov blankets.

``C`` separates ``A`` from ``B`` in an undirected graph when every path from a
node of ``A`` to a node of ``B`` passes through ``C``. For a positive
distribution that factorises on the graph this implies
``X_A ⟂ X_B | X_C`` (soundness; Hammersley & Clifford, 1971; Koller &
Friedman, 2009, Thm. 4.1), and separation is complete: if ``C`` does not
separate ``A`` from ``B``, some distribution on the graph has
``X_A`` and ``X_B`` dependent given ``X_C``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import networkx as nx

from umrf.graphs._nodes import check_graph, node_set


def separated(
    g: nx.Graph,
    A: Hashable | Iterable[Hashable],
    B: Hashable | Iterable[Hashable],
    C: Hashable | Iterable[Hashable] = (),
) -> bool:
    """Return True when ``C`` separates ``A`` from ``B`` in the undirected graph ``g``.

    Removes ``C`` from ``g`` and tests whether any node of ``B`` is reachable
    from ``A`` (breadth-first search, ``O(|V| + |E|)``).

    Args:
      g: an undirected networkx graph.
      A: a node or a non-empty collection of nodes.
      B: a node or a non-empty collection of nodes, disjoint from ``A``.
      C: the conditioning nodes (possibly empty), disjoint from ``A`` and ``B``.

    Returns:
      ``True`` iff every path between ``A`` and ``B`` passes through ``C``.

    Raises:
      ValueError: unknown nodes, an empty ``A`` or ``B``, or overlapping sets.

    Examples:
      >>> import networkx as nx
      >>> separated(nx.path_graph(3), 0, 2, 1), separated(nx.path_graph(3), 0, 2)
      (True, False)
    """
    check_graph("g", g)
    a, b, c = node_set(g, "A", A), node_set(g, "B", B), node_set(g, "C", C)
    if not a or not b:
        raise ValueError("`A` and `B` must each name at least one node.")
    for (n1, s1), (n2, s2) in (((("A", a), ("B", b))), (("A", a), ("C", c)), (("B", b), ("C", c))):
        if s1 & s2:
            raise ValueError(
                f"`{n1}` and `{n2}` share nodes {sorted(s1 & s2, key=repr)[:5]}; "
                "separation is defined for disjoint node sets."
            )
    seen = set(a)
    frontier = list(a)
    while frontier:
        v = frontier.pop()
        for u in g.adj[v]:
            if u in c or u in seen:
                continue
            if u in b:
                return False
            seen.add(u)
            frontier.append(u)
    return True


def markov_blanket(g: nx.Graph, v: Hashable) -> frozenset:
    """The Markov blanket of ``v`` in an undirected graph: its neighbours.

    Given its neighbours, ``X_v`` is independent of every other variable
    (the local Markov property; Koller & Friedman, 2009, §4.3.2).

    Raises:
      ValueError: ``v`` is not a node of ``g``.
    """
    check_graph("g", g)
    node_set(g, "v", (v,))
    return frozenset(u for u in g.adj[v] if u != v)
