"""moralize against networkx.moral_graph, and cycle errors."""

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umrf.graphs import moralize


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 9), st.floats(0.1, 0.8), st.integers(0, 10_000))
def test_equals_networkx_moral_graph(n, p, seed):
    g = nx.gnp_random_graph(n, p, seed=seed, directed=True)
    dag = nx.DiGraph([(u, v) for u, v in g.edges if u < v])  # orient by index: acyclic
    dag.add_nodes_from(range(n))
    ours, theirs = moralize(dag), nx.moral_graph(dag)
    assert not ours.is_directed()
    assert set(ours.nodes) == set(theirs.nodes)
    assert {frozenset(e) for e in ours.edges} == {frozenset(e) for e in theirs.edges}


def test_v_structure_marries_the_parents():
    g = moralize(nx.DiGraph([("rain", "wet"), ("sprinkler", "wet")]))
    assert g.has_edge("rain", "sprinkler")
    assert g.number_of_edges() == 3


def test_cycle_is_named_and_wrong_types_refused():
    with pytest.raises(ValueError, match=r"cycle 0 -> 1 -> 2 -> 0"):
        moralize(nx.DiGraph([(0, 1), (1, 2), (2, 0), (2, 3)]))
    with pytest.raises(TypeError, match="directed"):
        moralize(nx.Graph([(0, 1)]))
    with pytest.raises(TypeError, match="networkx"):
        moralize({0: [1]})
