"""separated and markov_blanket."""

import itertools

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umrf.graphs import markov_blanket, separated


def brute_separated(g, A, B, C):
    for a in A:
        for b in B:
            for path in nx.all_simple_paths(g, a, b):
                if not any(v in C for v in path[1:-1]):
                    return False
    return True


def test_chain_and_examples():
    g = nx.path_graph(4)
    assert separated(g, 0, 3, 1)
    assert separated(g, [0], [3], [2])
    assert not separated(g, 0, 3)
    assert separated(nx.empty_graph(3), 0, 2)
    assert not separated(nx.cycle_graph(4), 0, 2, 1)
    assert separated(nx.cycle_graph(4), 0, 2, [1, 3])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(3, 7), st.floats(0.2, 0.7), st.integers(0, 1000), st.data())
def test_matches_path_enumeration(n, p, seed, data):
    g = nx.gnp_random_graph(n, p, seed=seed)
    labels = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    A = [v for v in range(n - 1) if labels[v] == 0] or [0]
    B = [v for v in range(1, n) if labels[v] == 1 and v not in A] or [n - 1]
    C = [v for v in range(n) if labels[v] == 2 and v not in A + B]
    assert separated(g, A, B, C) == brute_separated(g, A, B, C)


def test_markov_blanket_is_the_neighbourhood():
    g = nx.gnp_random_graph(8, 0.4, seed=3)
    for v in g:
        assert markov_blanket(g, v) == frozenset(g.adj[v])
        rest = [u for u in g if u != v and u not in g.adj[v]]
        if rest:
            assert separated(g, v, rest, markov_blanket(g, v))


def test_bad_inputs():
    g = nx.path_graph(3)
    with pytest.raises(ValueError, match="not in the graph"):
        separated(g, 0, 9)
    with pytest.raises(ValueError, match="share nodes"):
        separated(g, 0, 2, [0])
    with pytest.raises(ValueError, match="share nodes"):
        separated(g, [0, 1], [1, 2])
    with pytest.raises(ValueError, match="at least one"):
        separated(g, [], [1])
    with pytest.raises(ValueError, match="not in the graph"):
        markov_blanket(g, "x")
    with pytest.raises(TypeError, match="directed"):
        separated(nx.DiGraph([(0, 1)]), 0, 1)
    assert list(itertools.chain(markov_blanket(g, 1))) == [0, 2] or markov_blanket(g, 1) == {0, 2}
