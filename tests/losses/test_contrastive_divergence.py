"""Contrastive divergence: exact ML gradient by enumeration, regulariser, NaN, jit, errors."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from umrf.losses import contrastive_divergence
from umrf.models import DiscreteMRF, Factor

CARDS = (2, 3, 2)


def make_mrf(seed=0):
    rng = np.random.default_rng(seed)
    return DiscreteMRF(
        CARDS,
        [
            Factor((0,), rng.normal(size=(2,))),
            Factor((0, 1), rng.normal(size=(2, 3))),
            Factor((1, 2), rng.normal(size=(3, 2))),
            Factor((0, 2), rng.normal(size=(2, 2))),
        ],
    )


def mrf_energy(mrf, x):
    return mrf.energy(x)


ALL = jnp.asarray(list(itertools.product(*(range(k) for k in CARDS))), jnp.int32)


def brute_force_log_partition(mrf):
    return jax.nn.logsumexp(-jax.vmap(mrf.energy)(ALL))


def test_cd_gradient_equals_exact_log_likelihood_gradient():
    # With the model expectation computed exactly (negatives = every state,
    # weights = p_θ), ∇θ CD = ∇θ [-mean log p_θ(data)] = ∇θ [mean E(data) + log Z].
    mrf = make_mrf(0)
    x_data = jax.random.randint(jax.random.key(0), (25, 3), 0, jnp.asarray(CARDS)[None])
    probs = jax.nn.softmax(-jax.vmap(mrf.energy)(ALL))

    def cd(m):
        return contrastive_divergence(mrf_energy, m, x_data, ALL, model_weights=probs)

    def nll(m):
        return jnp.mean(jax.vmap(m.energy)(x_data)) + brute_force_log_partition(m)

    g_cd = jax.jit(jax.grad(cd))(mrf)
    g_nll = jax.jit(jax.grad(nll))(mrf)
    for a, b in zip(jax.tree_util.tree_leaves(g_cd), jax.tree_util.tree_leaves(g_nll), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # Not trivially zero: the data are not distributed as the model.
    assert max(float(jnp.max(jnp.abs(a))) for a in jax.tree_util.tree_leaves(g_cd)) > 1e-2


def test_cd_with_exact_model_samples_is_unbiased():
    # Monte Carlo negatives drawn from p_θ: the gradient converges to the exact one.
    mrf = make_mrf(1)
    x_data = jax.random.randint(jax.random.key(1), (40, 3), 0, jnp.asarray(CARDS)[None])
    probs = jax.nn.softmax(-jax.vmap(mrf.energy)(ALL))
    idx = jax.random.choice(jax.random.key(2), ALL.shape[0], (50000,), p=probs)

    def cd(m):
        return contrastive_divergence(mrf_energy, m, x_data, ALL[idx])

    def nll(m):
        return jnp.mean(jax.vmap(m.energy)(x_data)) + brute_force_log_partition(m)

    g_mc = jax.jit(jax.grad(cd))(mrf)
    g_ex = jax.jit(jax.grad(nll))(mrf)
    for a, b in zip(jax.tree_util.tree_leaves(g_mc), jax.tree_util.tree_leaves(g_ex), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-2)


def test_value_and_energy_regulariser():
    def energy(w, x):
        return jnp.dot(w, x) ** 2

    w = jnp.array([0.5, -1.0])
    xd = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    xm = jnp.array([[1.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
    ed = np.array([0.25, 4.0])
    em = np.array([0.25, 1.0, 0.0])
    for alpha in (0.0, 0.3):
        loss, info = contrastive_divergence(energy, w, xd, xm, alpha=alpha, return_info=True)
        expected = ed.mean() - em.mean() + alpha * ((ed**2).mean() + (em**2).mean())
        np.testing.assert_allclose(loss, expected, rtol=1e-6)
        np.testing.assert_allclose(info.energy_data, ed.mean(), rtol=1e-6)
        np.testing.assert_allclose(info.energy_model, em.mean(), rtol=1e-6)
        assert bool(info.is_finite)
    # The penalty's gradient also flows through the negatives' energies, but the
    # negatives themselves are constants (stop_gradient).
    gx = jax.grad(lambda xm: contrastive_divergence(energy, w, xd, xm, alpha=0.3))(xm)
    np.testing.assert_array_equal(gx, 0.0)


def test_hard_constraints_with_zero_weight_states_stay_finite():
    # A zero potential (log ψ = -inf) gives infinite energy; its weight is zero.
    table = jnp.array([[0.0, -jnp.inf], [0.5, 0.0]])
    mrf = DiscreteMRF((2, 2), [Factor((0, 1), table)])
    states = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    probs = jax.nn.softmax(-jax.vmap(mrf.energy)(states))
    assert float(probs[1]) == 0.0
    loss, info = contrastive_divergence(
        mrf_energy, mrf, states[jnp.array([0, 3])], states, model_weights=probs, return_info=True
    )
    assert bool(info.is_finite) and np.isfinite(float(loss))
    # ...while an infinite-energy *sample* is reported, not hidden.
    loss, info = contrastive_divergence(mrf_energy, mrf, states[:1], states, return_info=True)
    assert not bool(info.is_finite) and int(info.num_nonfinite) == 1
    assert not np.isfinite(float(loss))


def test_nan_reported_jit_and_no_recompile():
    def energy(p, x):
        return p * jnp.sum(jnp.log(x))

    xd = jnp.array([[1.0, 2.0], [0.5, 1.0]])
    xm = jnp.array([[1.0, -1.0], [2.0, 1.0]])
    loss, info = contrastive_divergence(energy, 1.0, xd, xm, return_info=True)
    assert np.isnan(float(loss)) and not bool(info.is_finite) and int(info.num_nonfinite) == 1

    def quad(m, x):
        return 0.5 * jnp.sum((x - m) ** 2)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def grad_fn(m, xd, xm):
        return jax.grad(contrastive_divergence, argnums=1)(quad, m, xd, xm, alpha=0.1)

    xd = jax.random.normal(jax.random.key(0), (16, 2))
    xm = jax.random.normal(jax.random.key(1), (16, 2))
    g0 = grad_fn(jnp.zeros(2), xd, xm)
    grad_fn(jnp.ones(2), xd, xm)
    np.testing.assert_allclose(
        g0,
        jax.grad(contrastive_divergence, argnums=1)(quad, jnp.zeros(2), xd, xm, alpha=0.1),
        rtol=1e-5,
    )
    vm = jax.vmap(lambda m: contrastive_divergence(quad, m, xd, xm))(
        jnp.stack([jnp.zeros(2), jnp.ones(2)])
    )
    np.testing.assert_allclose(vm[1], contrastive_divergence(quad, jnp.ones(2), xd, xm), rtol=1e-5)


def test_bad_inputs():
    def e(p, x):
        return jnp.sum(x)

    x = jnp.ones((3, 2))
    with pytest.raises(ValueError, match="alpha"):
        contrastive_divergence(e, None, x, x, alpha=-0.1)
    with pytest.raises(ValueError, match="x_model"):
        contrastive_divergence(e, None, x, jnp.ones((0, 2)))
    with pytest.raises(ValueError, match="x_data"):
        contrastive_divergence(e, None, jnp.array([[jnp.nan, 1.0]]), x)
    with pytest.raises(ValueError, match="model_weights"):
        contrastive_divergence(e, None, x, x, model_weights=jnp.ones(2) / 2)
    with pytest.raises(ValueError, match="model_weights"):
        contrastive_divergence(e, None, x, x, model_weights=jnp.ones(3))
    with pytest.raises(ValueError, match="scalar"):
        contrastive_divergence(lambda p, x: x, None, x, x)
    with pytest.raises(TypeError):
        contrastive_divergence(e, None, x, x, 0.1)  # alpha is keyword-only


def test_nonfinite_negatives_are_flagged_not_rejected():
    def quad(m, x):
        return 0.5 * jnp.sum((x - m) ** 2)

    xd = jnp.ones((3, 2))
    xm = jnp.array([[0.0, 0.0], [jnp.nan, 1.0], [1.0, 1.0]])  # a diverged chain
    for f in (
        contrastive_divergence,
        jax.jit(contrastive_divergence, static_argnums=0, static_argnames="return_info"),
    ):
        loss, info = f(quad, jnp.zeros(2), xd, xm, return_info=True)
        assert np.isnan(float(loss)) and not bool(info.is_finite)
        assert int(info.num_nonfinite) == 1
