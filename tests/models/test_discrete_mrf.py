"""DiscreteMRF: validation, energy, pytree, condition, merge_to_maximal_cliques."""

import itertools

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

import umrf
from umrf.inference import enumerate_joint, log_partition
from umrf.models import DiscreteMRF, Factor


def model(seed=0, neg_frac=0.1):
    rng = np.random.default_rng(seed)
    cards = (2, 3, 2, 4, 2)
    scopes = [(0,), (0, 1), (1, 2), (2, 0), (0, 1, 2), (2, 3), (3, 4), (4,), (1, 0)]
    factors = []
    for s in scopes:
        t = rng.normal(size=tuple(cards[v] for v in s))
        t = np.where(rng.random(t.shape) < neg_frac, -np.inf, t)
        factors.append(Factor(s, t))
    return DiscreteMRF(cards, factors)


def test_energy_is_minus_sum_of_log_potentials():
    mrf = model()
    for x in itertools.islice(itertools.product(*(range(k) for k in mrf.cardinalities)), 0, 96, 7):
        want = -sum(
            float(np.asarray(f.log_potential)[tuple(x[v] for v in f.scope)]) for f in mrf.factors
        )
        got = float(mrf.energy(jnp.asarray(x)))
        assert got == pytest.approx(want, rel=1e-5) or (got == want == np.inf)
    xs = jnp.zeros((3, 5), jnp.int32)
    assert jax.vmap(mrf.energy)(xs).shape == (3,)
    with pytest.raises(ValueError, match="shape"):
        mrf.energy(jnp.zeros(4, jnp.int32))


def test_pytree_structure_and_properties():
    mrf = model()
    leaves, treedef = jax.tree_util.tree_flatten(mrf)
    assert len(leaves) == len(mrf.factors)
    again = jax.tree_util.tree_unflatten(treedef, leaves)
    assert again.scopes == mrf.scopes and again.cardinalities == mrf.cardinalities
    assert mrf.num_variables == 5
    g = mrf.graph
    assert set(g.nodes) == set(range(5))
    for s in mrf.scopes:
        assert umrf.graphs.is_clique(g, s)
    doubled = jax.tree.map(lambda t: 2 * t, mrf)
    assert isinstance(doubled, DiscreteMRF)


def test_merge_to_maximal_cliques_preserves_the_distribution():
    mrf = model(1)
    merged = mrf.merge_to_maximal_cliques()
    assert sorted(merged.scopes) == sorted(umrf.graphs.maximal_cliques(mrf.graph))
    assert merged.edges == mrf.edges
    np.testing.assert_allclose(
        np.asarray(enumerate_joint(merged)), np.asarray(enumerate_joint(mrf)), atol=1e-6
    )
    np.testing.assert_allclose(float(log_partition(merged)), float(log_partition(mrf)), rtol=1e-5)
    # a maximal clique that receives no factor still appears (with ψ = 1)
    g = nx.Graph([(0, 1), (1, 2)])
    lone = DiscreteMRF([2, 2, 2], [Factor((0,), [0.0, 1.0])], graph=g)
    m2 = lone.merge_to_maximal_cliques()
    assert set(m2.scopes) == {(0, 1), (1, 2)}
    np.testing.assert_allclose(
        np.asarray(enumerate_joint(m2)), np.asarray(enumerate_joint(lone)), atol=1e-6
    )


@pytest.mark.parametrize("evidence", [{1: 2}, {0: 1, 3: 3}, {2: 0, 4: 1, 1: 0}])
def test_condition_matches_the_conditional_of_the_joint(evidence):
    mrf = model(2, neg_frac=0.0)
    p = np.asarray(enumerate_joint(mrf), np.float64)
    cond, kept = mrf.condition(evidence, return_mapping=True)
    assert kept == tuple(v for v in range(5) if v not in evidence)
    assert cond.cardinalities == tuple(mrf.cardinalities[v] for v in kept)
    idx = tuple(evidence.get(v, slice(None)) for v in range(5))
    p_e = p[idx].sum()
    np.testing.assert_allclose(np.asarray(enumerate_joint(cond)), p[idx] / p_e, atol=1e-6)
    # log Z' - log Z = log p(e): constant factors are kept
    np.testing.assert_allclose(
        float(log_partition(cond) - log_partition(mrf)), np.log(p_e), rtol=1e-4
    )
    sub = nx.relabel_nodes(mrf.graph.subgraph(kept), {v: j for j, v in enumerate(kept)})
    assert {frozenset(e) for e in cond.graph.edges} == {frozenset(e) for e in sub.edges}


def test_condition_under_jit_with_traced_states_does_not_recompile():
    mrf = model(3, neg_frac=0.0)
    p = np.asarray(enumerate_joint(mrf), np.float64)
    traces = []

    @jax.jit
    def log_p_e(m, s):
        traces.append(1)
        return log_partition(m.condition({1: s})) - log_partition(m)

    for s in range(3):
        np.testing.assert_allclose(float(log_p_e(mrf, s)), np.log(p[:, s].sum()), rtol=1e-4)
    assert len(traces) == 1
    full = mrf.condition({v: 0 for v in range(5)})
    assert full.num_variables == 0
    np.testing.assert_allclose(
        float(jnp.exp(log_partition(full) - log_partition(mrf))), p[0, 0, 0, 0, 0], rtol=1e-4
    )


def test_validation_errors():
    with pytest.raises(ValueError, match="non-negative"):
        Factor.from_potential((0,), [1.0, -0.5])
    with pytest.raises(ValueError, match="non-negative"):
        Factor.from_potential((0,), [1.0, np.nan])
    with pytest.raises(ValueError, match="reshape the table"):
        DiscreteMRF([2, 3], [Factor((0, 1), np.zeros((3, 2)))])
    with pytest.raises(ValueError, match="axes"):
        Factor((0, 1), np.zeros(2))
    with pytest.raises(ValueError, match="not a clique"):
        DiscreteMRF([2, 2, 2], [Factor((0, 2), np.zeros((2, 2)))], graph=nx.path_graph(3))
    with pytest.raises(ValueError, match="NaN"):
        Factor((0,), [0.0, np.nan])
    with pytest.raises(ValueError, match=r"\+inf"):
        Factor((0,), [0.0, np.inf])
    with pytest.raises(ValueError, match="repeats"):
        Factor((0, 0), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=">= 1"):
        DiscreteMRF([2, 0], [])
    with pytest.raises(TypeError, match="sequence"):
        DiscreteMRF(3, [])
    with pytest.raises(TypeError, match="ints"):
        DiscreteMRF([2.5], [])
    with pytest.raises(ValueError, match="names a variable"):
        DiscreteMRF([2], [Factor((1,), np.zeros(2))])
    with pytest.raises(TypeError, match="Factor"):
        DiscreteMRF([2], [np.zeros(2)])
    with pytest.raises(TypeError, match="undirected"):
        DiscreteMRF([2, 2], [], graph=nx.DiGraph([(0, 1)]))
    with pytest.raises(ValueError, match="outside"):
        DiscreteMRF([2, 2], [], graph=nx.path_graph(3))
    mrf = model()
    with pytest.raises(ValueError, match="outside 0..2"):
        mrf.condition({1: 3})
    with pytest.raises(ValueError, match="outside 0..4"):
        mrf.condition({9: 0})
    with pytest.raises(TypeError, match="mapping"):
        mrf.condition([(1, 0)])
    with pytest.raises(ValueError, match="int state"):
        mrf.condition({1: 0.5})
    assert Factor((0,), np.array([1, 2])).log_potential.dtype == jnp.float32
