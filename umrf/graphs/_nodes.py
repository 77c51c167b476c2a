"""Node-set validation shared by the graph helpers."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import networkx as nx


def check_graph(name: str, g: Any, *, directed: bool | None = False) -> None:
    """Raise ``TypeError`` unless ``g`` is a networkx graph of the expected kind."""
    if not isinstance(g, nx.Graph):
        raise TypeError(f"`{name}` must be a networkx graph; got {type(g).__name__}.")
    if directed is False and g.is_directed():
        raise TypeError(
            f"`{name}` is directed; pass an undirected nx.Graph (use umrf.graphs.moralize "
            "to turn a DAG into an undirected graph)."
        )
    if directed is True and not g.is_directed():
        raise TypeError(f"`{name}` must be a directed nx.DiGraph; got an undirected graph.")


def node_set(g: nx.Graph, name: str, nodes: Hashable | Iterable[Hashable]) -> frozenset:
    """Return ``nodes`` as a frozenset after checking each is a node of ``g``.

    A single node that is not iterable (e.g. an int) is accepted as a one-node set.
    """
    if isinstance(nodes, str | bytes) or not isinstance(nodes, Iterable):
        nodes = (nodes,)
    out = frozenset(nodes)
    unknown = [v for v in out if v not in g]
    if unknown:
        raise ValueError(
            f"`{name}` names nodes {sorted(unknown, key=repr)[:5]} that are not in the graph; "
            "use the graph's node labels."
        )
    return out
