"""colouring: proper, a partition, two colours on bipartite graphs (grids: checkerboard)."""

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umrf.graphs import colouring, grid


def check_proper(g, classes):
    assert all(isinstance(c, np.ndarray) and c.dtype == np.int32 for c in classes)
    assert all(np.all(np.diff(c) > 0) for c in classes)
    allv = np.concatenate(classes) if classes else np.zeros(0, int)
    assert sorted(allv.tolist()) == sorted(g.nodes)
    colour = {int(v): k for k, c in enumerate(classes) for v in c}
    assert all(colour[a] != colour[b] for a, b in g.edges)


@pytest.mark.parametrize("h,w", [(2, 2), (3, 5), (8, 8), (4, 6)])
def test_grids_get_the_checkerboard(h, w):
    classes = colouring(grid(h, w))
    assert len(classes) == 2
    check_proper(grid(h, w), classes)
    even = [v for v in range(h * w) if sum(divmod(v, w)) % 2 == 0]
    assert classes[0].tolist() == even
    assert len(colouring(grid(4, 6, periodic=True))) == 2  # even torus is bipartite


def test_odd_torus_triangle_and_empty():
    g = grid(3, 3, periodic=True)
    classes = colouring(g)
    check_proper(g, classes)
    assert len(classes) == 3
    assert len(colouring(nx.complete_graph(5))) == 5
    assert len(colouring(nx.empty_graph(4))) == 1
    assert colouring(nx.Graph()) == ()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 30), st.floats(0.0, 0.6), st.integers(0, 10_000))
def test_random_graphs(n, p, seed):
    g = nx.gnp_random_graph(n, p, seed=seed)
    classes = colouring(g)
    check_proper(g, classes)
    assert len(classes) <= max((d for _, d in g.degree), default=0) + 1
    if nx.is_bipartite(g) and g.number_of_edges():
        assert len(classes) == 2


def test_bad_inputs():
    with pytest.raises(ValueError, match="non-negative ints"):
        colouring(nx.Graph([("a", "b")]))
    g = nx.Graph([(0, 0)])
    with pytest.raises(ValueError, match="self-loops"):
        colouring(g)
    with pytest.raises(TypeError, match="directed"):
        colouring(nx.DiGraph([(0, 1)]))
