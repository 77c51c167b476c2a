"""Bad input to the graph functions: a clear error naming the argument."""

import networkx as nx
import pytest

import umrf
from umrf import graphs

G = graphs.grid(3, 3)

CASES = {
    "separation with an unknown node": (
        lambda: graphs.separated(G, {0}, {99}, ()),
        ValueError,
        "99",
    ),
    "separation of overlapping sets": (
        lambda: graphs.separated(G, {0, 1}, {1, 2}, ()),
        ValueError,
        "share nodes",
    ),
    "separation in a directed graph": (
        lambda: graphs.separated(nx.DiGraph([(0, 1)]), {0}, {1}, ()),
        TypeError,
        "g",
    ),
    "Markov blanket of an unknown node": (
        lambda: graphs.markov_blanket(G, 42),
        ValueError,
        "42",
    ),
    "moralising a cycle": (
        lambda: graphs.moralize(nx.DiGraph([(0, 1), (1, 0)])),
        ValueError,
        "cycle",
    ),
    "moralising an undirected graph": (lambda: graphs.moralize(G), TypeError, "dag"),
    "grid with a zero side": (lambda: graphs.grid(0, 3), ValueError, "h"),
    "cliques of a non-graph": (lambda: graphs.cliques([(0, 1)]), TypeError, "g"),
    "colouring of a non-graph": (lambda: graphs.colouring("G"), TypeError, "g"),
    "is_clique with an unknown node": (lambda: graphs.is_clique(G, [0, 77]), ValueError, "77"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_raises_a_clear_error(case):
    fn, err, match = CASES[case]
    with pytest.raises(err, match=match):
        fn()


def test_the_lattice_helper_agrees_with_the_models():
    assert (
        graphs.grid(4, 4, periodic=True).number_of_edges()
        == umrf.models.ising((4, 4)).to_discrete_mrf().graph.number_of_edges()
    )
