"""Hammersley–Clifford checked numerically: separation vs conditional independence."""

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import umrf
from umrf.inference import enumerate_joint, independence_gap, is_independent
from umrf.models import DiscreteMRF, Factor

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


def random_positive_mrf(g, seed, card=2):
    """Strong generic positive potentials on every edge and node of ``g``."""
    rng = np.random.default_rng(seed)
    n = g.number_of_nodes()
    factors = [Factor((v,), rng.normal(size=card)) for v in range(n)]
    for a, b in g.edges:
        t = rng.normal(size=(card, card))
        t = t + 2.0 * np.sign(rng.normal()) * np.eye(card)  # a clear coupling on each edge
        factors.append(Factor((a, b), t))
    return DiscreteMRF([card] * n, factors, graph=g)


@st.composite
def graph_and_sets(draw):
    n = draw(st.integers(3, 6))
    p = draw(st.sampled_from([0.3, 0.5, 0.7]))
    seed = draw(st.integers(0, 10_000))
    g = nx.gnp_random_graph(n, p, seed=seed)
    labels = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))  # 0:A 1:B 2:C 3:rest
    A = [v for v in range(n - 1) if labels[v] == 0] or [0]
    B = [v for v in range(1, n) if labels[v] == 1 and v not in A] or [n - 1]
    C = [v for v in range(n) if labels[v] == 2 and v not in A + B]
    return g, A, B, C, seed


@SETTINGS
@given(graph_and_sets())
def test_separation_implies_independence_and_its_absence_dependence(case):
    g, A, B, C, seed = case
    mrf = random_positive_mrf(g, seed)
    gap = float(independence_gap(mrf, A, B, C))
    if umrf.graphs.separated(g, A, B, C):
        assert gap < 2e-6, (A, B, C, gap)  # Hammersley–Clifford (soundness)
        assert is_independent(mrf, A, B, C)
    else:
        assert gap > 1e-4, (A, B, C, gap)  # completeness, for generic potentials
        assert not is_independent(mrf, A, B, C)


def test_trivial_graph_gives_full_independence():
    g = nx.empty_graph(4)
    mrf = random_positive_mrf(g, 0, card=3)
    p = np.asarray(enumerate_joint(mrf), np.float64)
    prod = np.einsum(
        "i,j,k,l->ijkl", *(p.sum(axis=tuple(j for j in range(4) if j != i)) for i in range(4))
    )
    np.testing.assert_allclose(p, prod, atol=1e-6)
    for a in range(4):
        for b in range(4):
            if a != b:
                assert is_independent(mrf, a, b)
                assert is_independent(mrf, a, b, [c for c in range(4) if c not in (a, b)])


def test_complete_graph_fits_any_distribution():
    rng = np.random.default_rng(7)
    cards = (2, 3, 2)
    target = rng.dirichlet(np.ones(12)).reshape(cards)
    g = nx.complete_graph(3)
    # one factor on the maximal clique ψ_012 = p fits exactly ...
    mrf = DiscreteMRF(cards, [Factor.from_potential((0, 1, 2), target)], graph=g)
    np.testing.assert_allclose(np.asarray(enumerate_joint(mrf)), target, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(umrf.inference.log_partition(mrf)), 0.0, atol=1e-6)
    # ... and a generic distribution has no independence at all
    assert not is_independent(mrf, 0, 1)
    assert not is_independent(mrf, 0, 2, 1)
    # scopes in any axis order are the same distribution
    perm = DiscreteMRF(cards, [Factor.from_potential((2, 0, 1), target.transpose(2, 0, 1))])
    np.testing.assert_allclose(np.asarray(enumerate_joint(perm)), target, rtol=1e-5, atol=1e-7)


def test_examples_and_bad_inputs():
    t = np.array([[1.0, -1.0], [-1.0, 1.0]])
    chain = DiscreteMRF([2, 2, 2], [Factor((0, 1), t), Factor((1, 2), t)])
    assert is_independent(chain, 0, 2, 1)
    assert not is_independent(chain, 0, 2)
    assert is_independent(chain, [0], [2], [1], atol=0.0) in (True, False)
    with pytest.raises(ValueError, match="outside"):
        is_independent(chain, 0, 5)
    with pytest.raises(ValueError, match="overlap"):
        is_independent(chain, 0, 1, [1])
    with pytest.raises(ValueError, match="at least one"):
        is_independent(chain, [], 1)
    with pytest.raises(ValueError, match="atol"):
        is_independent(chain, 0, 2, atol=-1.0)
