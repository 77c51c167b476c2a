"""cliques, maximal_cliques and is_clique."""

import itertools

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umrf.graphs import cliques, is_clique, maximal_cliques


def test_complete_graph_and_path():
    k4 = nx.complete_graph(4)
    cs = cliques(k4)
    assert len(cs) == 2**4 - 1
    assert cs[:4] == [(0,), (1,), (2,), (3,)] and cs[-1] == (0, 1, 2, 3)
    assert maximal_cliques(k4) == [(0, 1, 2, 3)]
    assert maximal_cliques(nx.path_graph(3)) == [(0, 1), (1, 2)]
    g = nx.Graph([(0, 1), (1, 2), (0, 2), (2, 3)])
    g.add_node(4)
    assert maximal_cliques(g) == [(0, 1, 2), (2, 3), (4,)]


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(1, 7), st.floats(0.1, 0.9), st.integers(0, 1000))
def test_cliques_match_brute_force(n, p, seed):
    g = nx.gnp_random_graph(n, p, seed=seed)
    brute = {
        c
        for r in range(1, n + 1)
        for c in itertools.combinations(range(n), r)
        if all(g.has_edge(a, b) for a, b in itertools.combinations(c, 2))
    }
    assert set(cliques(g)) == brute
    assert all(is_clique(g, c) for c in brute)
    maximal = {c for c in brute if not any(set(c) < set(d) for d in brute)}
    assert set(maximal_cliques(g)) == maximal


def test_bad_inputs():
    g = nx.path_graph(3)
    assert is_clique(g, [])
    assert not is_clique(g, [0, 2])
    with pytest.raises(ValueError, match="not in the graph"):
        is_clique(g, [0, 7])
    with pytest.raises(TypeError, match="directed"):
        cliques(nx.DiGraph([(0, 1)]))
    with pytest.raises(TypeError, match="networkx"):
        maximal_cliques([(0, 1)])
