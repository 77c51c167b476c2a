"""Proper vertex colourings for block (chromatic) Gibbs sampling.

Variables of one colour class are pairwise non-adjacent, hence conditionally
independent given the rest, so a Gibbs sampler may update a whole class in
parallel (Gonzalez et al., "Parallel Gibbs Sampling: From Colored Fields to
Thin Junction Trees", AISTATS 2011).
"""

from __future__ import annotations

from collections import deque

import networkx as nx
import numpy as np

from umrf.graphs._nodes import check_graph


def _two_colouring(g: nx.Graph) -> dict | None:
    """Breadth-first 2-colouring (smallest node of each component gets colour 0)."""
    colour: dict = {}
    for start in sorted(g.nodes):
        if start in colour:
            continue
        colour[start] = 0
        queue = deque([start])
        while queue:
            v = queue.popleft()
            for u in g.adj[v]:
                if u == v:
                    return None
                if u not in colour:
                    colour[u] = 1 - colour[v]
                    queue.append(u)
                elif colour[u] == colour[v]:
                    return None
    return colour


def colouring(g: nx.Graph) -> tuple[np.ndarray, ...]:
    """A proper colouring of ``g`` as a tuple of colour classes.

    A bipartite graph (a grid, a chain, a tree) gets exactly two colours
    (one if it has no edges): a breadth-first 2-colouring in which the
    smallest node of each connected component has colour 0, so a grid gives
    the checkerboard (``(r + c) % 2``). Any other graph gets the DSatur greedy
    colouring (Brélaz, 1979), which uses at most ``max degree + 1`` colours.

    Args:
      g: an undirected networkx graph whose nodes are non-negative ints
        (variable indices), without self-loops.

    Returns:
      A tuple of sorted ``int32`` numpy arrays, one per colour, that together
      partition the nodes; no edge joins two nodes of the same class. An empty
      graph gives ``()``.

    Raises:
      TypeError: ``g`` is not an undirected networkx graph.
      ValueError: a node is not a non-negative int, or ``g`` has a self-loop.

    Examples:
      >>> from umrf.graphs import grid
      >>> [c.tolist() for c in colouring(grid(2, 2))]
      [[0, 3], [1, 2]]
    """
    check_graph("g", g)
    bad = [v for v in g.nodes if isinstance(v, bool) or not isinstance(v, int | np.integer)]
    bad += [v for v in g.nodes if not bad and v < 0]
    if bad:
        raise ValueError(
            f"`g` has nodes {bad[:5]!r} that are not non-negative ints; relabel the nodes "
            "0..n-1 (e.g. nx.convert_node_labels_to_integers)."
        )
    loops = list(nx.selfloop_edges(g))
    if loops:
        raise ValueError(f"`g` has self-loops {loops[:3]}; no proper colouring exists.")
    if g.number_of_nodes() == 0:
        return ()
    colour = _two_colouring(g)
    if colour is None:
        colour = nx.greedy_color(g, strategy="DSATUR")
    k = max(colour.values()) + 1
    classes = [[] for _ in range(k)]
    for v, c in colour.items():
        classes[c].append(int(v))
    return tuple(np.asarray(sorted(c), dtype=np.int32) for c in classes if c)
