"""Loopy BP: exact on trees and chains (marginals, log Z, MAP), close on loopy grids."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf._structure import groups_for
from umrf.models import DiscreteMRF, Factor

bp = umrf.inference.loopy_belief_propagation


def tree_mrf(seed=0, hard_zero=False):
    """A tree-structured factor graph with a 3-way factor and mixed cardinalities."""
    rng = np.random.default_rng(seed)
    cards = [2, 3, 2, 4, 2, 3, 2]
    scopes = [(0, 1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (0,), (3,), (6,)]
    factors = [Factor(s, rng.normal(size=tuple(cards[v] for v in s))) for s in scopes]
    if hard_zero:
        t = np.asarray(factors[1].log_potential).copy()
        t[0, :2] = -np.inf
        factors[1] = Factor((2, 3), t)
    return DiscreteMRF(cards, factors)


def chain_mrf(n=6, k=3, seed=1):
    rng = np.random.default_rng(seed)
    factors = [Factor((i, i + 1), rng.normal(size=(k, k))) for i in range(n - 1)]
    factors += [Factor((i,), rng.normal(size=k)) for i in range(n)]
    return DiscreteMRF([k] * n, factors)


def assert_matches_exact(mrf, res, atol=1e-5):
    exact = umrf.inference.marginals(mrf)
    for i, b in enumerate(exact.variables):
        np.testing.assert_allclose(res.variable(mrf, i), b, atol=atol)
    for a, b in zip(res.factor_tables(mrf), exact.factors, strict=True):
        np.testing.assert_allclose(a, b, atol=atol)
    np.testing.assert_allclose(
        float(res.log_partition), float(umrf.inference.log_partition(mrf)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("hard_zero", [False, True])
def test_exact_on_tree_with_three_way_factor(hard_zero):
    mrf = tree_mrf(hard_zero=hard_zero)
    res = bp(mrf, num_iters=10, damping=0.0)
    assert_matches_exact(mrf, res)
    assert bool(res.converged)


def test_exact_on_chain_with_damping_and_temperature():
    mrf = chain_mrf()
    assert_matches_exact(mrf, bp(mrf, num_iters=80, damping=0.5))
    hot = jax.tree_util.tree_map(lambda t: t / 2.0, mrf)  # p_T with T = 2
    assert_matches_exact(hot, bp(mrf, num_iters=10, damping=0.0, temperature=2.0))


def test_max_product_map_on_tree_and_chain():
    for mrf in (tree_mrf(2), chain_mrf(seed=3)):
        res = bp(mrf, num_iters=12, damping=0.0, mode="max")
        x_map = umrf.inference.map_assignment(mrf)
        np.testing.assert_array_equal(res.map_assignment, x_map)
        np.testing.assert_allclose(float(res.log_partition), float(-mrf.energy(x_map)), rtol=1e-5)


def test_convergence_report():
    mrf = chain_mrf(n=8)
    short = bp(mrf, num_iters=2, damping=0.0)
    assert not bool(short.converged) and float(short.max_change) > 1e-3
    full = bp(mrf, num_iters=20, damping=0.0)
    assert bool(full.converged) and float(full.max_change) < 1e-5


def test_gradient_of_bethe_log_z_is_beliefs_on_tree():
    mrf = tree_mrf(4)
    grads = jax.grad(lambda m: bp(m, num_iters=10, damping=0.0).log_partition)(mrf)
    exact = umrf.inference.marginals(mrf)
    for g, t in zip(grads.factors, exact.factors, strict=True):
        np.testing.assert_allclose(g.log_potential, t, atol=1e-5)


def test_loopy_grid_close_to_exact():
    """Weak coupling 5x5 grid (β = 0.25): marginals within 0.02 and log Z within 0.5%."""
    rng = np.random.default_rng(5)
    model = umrf.models.ising(
        (5, 5), coupling=0.25, field=rng.normal(scale=0.3, size=(5, 5)), periodic=False
    )
    mrf = model.to_discrete_mrf()
    res = bp(mrf, num_iters=100, damping=0.5)
    exact = umrf.inference.marginals(mrf)
    err = float(jnp.max(jnp.abs(res.variables - jnp.stack(exact.variables))))
    lz = float(umrf.inference.log_partition(mrf))
    assert bool(res.converged)
    assert err < 0.02
    assert abs(float(res.log_partition) - lz) < 5e-3 * abs(lz)
    # mean-field is further from the truth and a strict lower bound
    mf = umrf.inference.mean_field(mrf, num_iters=50)
    assert float(mf.elbo) < lz


def test_jit_vmap_no_recompile():
    mrf = tree_mrf(6)

    @chex.assert_max_traces(n=1)
    def run(m):
        return bp(m, num_iters=10, damping=0.0).log_partition

    run = jax.jit(run)
    a = run(mrf)
    b = run(jax.tree_util.tree_map(lambda t: 0.5 * t, mrf))
    batch = jax.tree_util.tree_map(lambda t: jnp.stack([t, 0.5 * t]), mrf)
    both = jax.vmap(lambda m: bp(m, num_iters=10, damping=0.0).log_partition)(batch)
    np.testing.assert_allclose(both, jnp.stack([a, b]), rtol=1e-5)


def test_repeated_queries_reuse_packed_tables_and_new_values_are_seen():
    """Packed tables are cached on the identity of the (immutable) leaves, never stale."""
    mrf = chain_mrf(seed=7)
    first = bp(mrf, num_iters=20, damping=0.0)
    fg = groups_for(mrf)
    packed = fg.tables(mrf)
    assert fg.tables(mrf) is packed  # same model object: no repacking
    # Same structure, one new table: a different leaf, so the tables are repacked.
    changed = DiscreteMRF(
        mrf.cardinalities,
        [*mrf.factors[:-1], Factor(mrf.factors[-1].scope, jnp.array([3.0, 0.0, -3.0]))],
    )
    assert fg.tables(changed) is not packed
    assert_matches_exact(changed, bp(changed, num_iters=20, damping=0.0))
    assert_matches_exact(mrf, first)
    again = bp(mrf, num_iters=20, damping=0.0)
    np.testing.assert_array_equal(again.variables, first.variables)
    # a bounded cache: older models are evicted
    for seed in range(4):
        other = jax.tree_util.tree_map(lambda t, s=seed: t + s, mrf)
        fg.tables(other)
    assert len(fg._packed) <= 2


def test_bad_input_raises():
    mrf = chain_mrf()
    with pytest.raises(ValueError, match="damping"):
        bp(mrf, num_iters=10, damping=1.0)
    with pytest.raises(ValueError, match="mode"):
        bp(mrf, num_iters=10, mode="min")
    with pytest.raises(ValueError, match="temperature"):
        bp(mrf, num_iters=10, temperature=0.0)
    with pytest.raises(ValueError, match="num_iters"):
        bp(mrf, num_iters=0)
    with pytest.raises(TypeError, match="DiscreteMRF"):
        bp({"not": "an mrf"}, num_iters=10)
