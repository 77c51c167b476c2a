"""Naive mean-field: the ELBO is a true lower bound, equals log Z - KL by enumeration, ascends."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.models import DiscreteMRF, Factor


def loopy_mrf(seed=0, hard_zero=False):
    rng = np.random.default_rng(seed)
    cards = [2, 3, 2, 2, 3]
    scopes = [(0, 1, 2), (2, 3), (3, 4), (4, 0), (1, 3), (0,), (4,), (2,)]
    factors = [Factor(s, rng.normal(size=tuple(cards[v] for v in s))) for s in scopes]
    if hard_zero:
        t = np.asarray(factors[1].log_potential).copy()
        t[0, 1] = -np.inf
        factors[1] = Factor((2, 3), t)
    return DiscreteMRF(cards, factors)


def brute_force_elbo(mrf, qs):
    """Σ_x q(x) (log p̃(x) - log q(x)) by enumerating every configuration."""
    logp = np.asarray(umrf.inference.unnormalized_log_joint(mrf), np.float64)
    q = np.ones(())
    for i, qi in enumerate(qs):
        shape = [1] * len(qs)
        shape[i] = -1
        q = q * np.asarray(qi, np.float64).reshape(shape)
    pos = q > 0
    return float(
        np.sum(np.where(pos, q * (np.where(pos, logp, 0) - np.log(np.where(pos, q, 1))), 0))
    )


@pytest.mark.parametrize("hard_zero", [False, True])
def test_elbo_is_lower_bound_and_matches_enumeration(hard_zero):
    mrf = loopy_mrf(hard_zero=hard_zero)
    res = umrf.inference.mean_field(mrf, num_iters=60)
    lz = float(umrf.inference.log_partition(mrf))
    assert np.isfinite(float(res.elbo))
    assert float(res.elbo) <= lz + 1e-5
    qs = [res.variable(mrf, i) for i in range(mrf.num_variables)]
    np.testing.assert_allclose(float(res.elbo), brute_force_elbo(mrf, qs), rtol=1e-5, atol=1e-5)
    # coordinate ascent: the ELBO never decreases
    assert np.all(np.diff(np.asarray(res.elbo_trace)) >= -1e-5)
    assert bool(res.converged)
    for i, k in enumerate(mrf.cardinalities):
        assert res.variable(mrf, i).shape == (k,)
        np.testing.assert_allclose(float(jnp.sum(res.variables[i])), 1.0, rtol=1e-6)
    tables = res.factor_tables(mrf)
    for k, (f, t) in enumerate(zip(mrf.factors, tables, strict=True)):
        assert t.shape == f.log_potential.shape
        np.testing.assert_allclose(t, res.factor(mrf, k))
        np.testing.assert_allclose(float(jnp.sum(t)), 1.0, rtol=1e-5)


def test_fixed_point_and_envelope_gradient():
    """At convergence every q_i is its own update, and dELBO/dθ_k equals Π q (envelope theorem)."""
    mrf = loopy_mrf(1)
    res = umrf.inference.mean_field(mrf, num_iters=200)
    q = [np.asarray(res.variable(mrf, i), np.float64) for i in range(mrf.num_variables)]
    for i, k in enumerate(mrf.cardinalities):
        logits = np.zeros(k)
        for f in mrf.factors:
            if i not in f.scope:
                continue
            t = np.asarray(f.log_potential, np.float64)
            j = f.scope.index(i)
            for l, v in enumerate(f.scope):
                if l != j:
                    shape = [1] * t.ndim
                    shape[l] = -1
                    t = t * q[v].reshape(shape)
            logits += np.moveaxis(t, j, 0).reshape(k, -1).sum(1)
        want = np.exp(logits - logits.max())
        np.testing.assert_allclose(q[i], want / want.sum(), atol=1e-5)
    grads = jax.grad(lambda m: umrf.inference.mean_field(m, num_iters=200).elbo)(mrf)
    for g, t in zip(grads.factors, res.factor_tables(mrf), strict=True):
        np.testing.assert_allclose(g.log_potential, t, atol=2e-4)


def test_exact_for_independent_variables():
    rng = np.random.default_rng(2)
    mrf = DiscreteMRF(
        [2, 3, 4], [Factor((i,), rng.normal(size=k)) for i, k in enumerate([2, 3, 4])]
    )
    res = umrf.inference.mean_field(mrf, num_iters=2)
    exact = umrf.inference.marginals(mrf)
    np.testing.assert_allclose(float(res.elbo), float(umrf.inference.log_partition(mrf)), rtol=1e-6)
    for i, b in enumerate(exact.variables):
        np.testing.assert_allclose(res.variable(mrf, i), b, atol=1e-6)


def test_grid_bound_and_damping():
    mrf = umrf.models.ising((4, 4), coupling=0.5, field=0.1).to_discrete_mrf()
    lz = float(umrf.inference.log_partition(mrf))
    plain = umrf.inference.mean_field(mrf, num_iters=50)
    damped = umrf.inference.mean_field(mrf, num_iters=150, damping=0.5)
    assert float(plain.elbo) <= lz and float(damped.elbo) <= lz
    assert np.all(np.diff(np.asarray(damped.elbo_trace)) >= -1e-4)  # float32 rounding of ~18
    np.testing.assert_allclose(float(plain.elbo), float(damped.elbo), rtol=1e-4)


def test_jit_vmap_no_recompile():
    mrf = loopy_mrf(3)

    @chex.assert_max_traces(n=1)
    def run(m):
        return umrf.inference.mean_field(m, num_iters=30).elbo

    run = jax.jit(run)
    a = run(mrf)
    b = run(jax.tree_util.tree_map(lambda t: 0.5 * t, mrf))
    batch = jax.tree_util.tree_map(lambda t: jnp.stack([t, 0.5 * t]), mrf)
    both = jax.vmap(lambda m: umrf.inference.mean_field(m, num_iters=30).elbo)(batch)
    np.testing.assert_allclose(both, jnp.stack([a, b]), rtol=1e-5)


def test_bad_input_raises():
    mrf = loopy_mrf()
    with pytest.raises(ValueError, match="damping"):
        umrf.inference.mean_field(mrf, num_iters=10, damping=1.0)
    with pytest.raises(ValueError, match="damping"):
        umrf.inference.mean_field(mrf, num_iters=10, damping=-0.1)
    with pytest.raises(ValueError, match="num_iters"):
        umrf.inference.mean_field(mrf, num_iters=0)
    with pytest.raises(TypeError, match="DiscreteMRF"):
        umrf.inference.mean_field(umrf.models.ising((2, 2)), num_iters=10)
