"""Rectangular lattices (grids) with row-major node labels."""

from __future__ import annotations

import networkx as nx

from umrf._validation import check_positive_int


def grid(h: int, w: int, *, periodic: bool = False) -> nx.Graph:
    """The ``h × w`` 4-neighbour lattice with nodes ``0..h*w-1`` in row-major order.

    Node ``r * w + c`` is the site in row ``r`` and column ``c``; it is joined
    to its right and lower neighbours. Each node carries a ``pos=(c, -r)``
    attribute for drawing.

    Args:
      h: number of rows (≥ 1).
      w: number of columns (≥ 1).
      periodic: wrap both directions (a torus). A wrap edge that would be a
        self-loop (a side of length 1) or duplicate an existing edge (a side
        of length 2) is not added twice.

    Returns:
      A new ``nx.Graph``.

    Examples:
      >>> g = grid(2, 3)
      >>> g.number_of_nodes(), g.number_of_edges()
      (6, 7)
    """
    h = check_positive_int("h", h)
    w = check_positive_int("w", w)
    if not isinstance(periodic, bool):
        raise TypeError(f"`periodic` must be a bool; got {type(periodic).__name__}.")
    g = nx.Graph()
    for r in range(h):
        for c in range(w):
            g.add_node(r * w + c, pos=(c, -r))
    for r in range(h):
        for c in range(w):
            v = r * w + c
            if c + 1 < w:
                g.add_edge(v, v + 1)
            elif periodic and w > 1:
                g.add_edge(v, r * w)
            if r + 1 < h:
                g.add_edge(v, v + w)
            elif periodic and h > 1:
                g.add_edge(v, c)
    return g
