"""Gaussian energy: log Z against numeric integration and closed form, exact samples."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import umrf
from umrf.models import Gaussian


def test_log_partition_matches_numeric_integration_2d():
    lam = jnp.array([[2.0, 0.7], [0.7, 1.0]])
    g = umrf.models.Gaussian(jnp.array([0.3, -0.5]), lam)
    for temperature in (1.0, 0.5):
        grid = np.linspace(-9, 9, 601)
        xx, yy = np.meshgrid(grid, grid, indexing="ij")
        pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
        e = np.asarray(jax.vmap(g.energy)(pts), np.float64)
        h = grid[1] - grid[0]
        numeric = math.log(np.sum(np.exp(-e / temperature)) * h * h)
        assert float(g.log_partition(temperature=temperature)) == pytest.approx(numeric, abs=1e-4)
        # normalised log-density integrates to one
        lp = np.asarray(
            jax.vmap(lambda x, t=temperature: g.log_prob(x, temperature=t))(pts), np.float64
        )
        assert np.sum(np.exp(lp)) * h * h == pytest.approx(1.0, abs=1e-4)


def test_exact_samples_have_the_right_moments_and_temperature():
    cov = jnp.array([[1.0, 0.5, 0.0], [0.5, 2.0, -0.4], [0.0, -0.4, 0.5]])
    mean = jnp.array([1.0, -2.0, 0.5])
    g = umrf.models.Gaussian.from_covariance(mean, cov)
    np.testing.assert_allclose(g.covariance, cov, rtol=1e-5, atol=1e-6)
    x = g.sample(jax.random.key(0), (200, 500))
    assert x.shape == (200, 500, 3)
    flat = np.asarray(x).reshape(-1, 3)
    np.testing.assert_allclose(flat.mean(0), mean, atol=0.01)
    np.testing.assert_allclose(np.cov(flat.T), cov, atol=0.015)
    hot = np.asarray(g.sample(jax.random.key(1), (50000,), temperature=3.0))
    np.testing.assert_allclose(np.cov(hot.T), 3.0 * np.asarray(cov), atol=0.08)


def test_gaussian_is_a_pytree_and_its_own_params():
    g = umrf.models.Gaussian(jnp.zeros(2), jnp.eye(2))
    leaves, treedef = jax.tree_util.tree_flatten(g)
    assert len(leaves) == 2
    g2 = jax.tree_util.tree_unflatten(treedef, [leaves[0] + 1.0, leaves[1] * 2.0])
    grad = jax.grad(lambda m, x: m.energy(x))(g, jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(grad.mean, -jnp.array([1.0, 2.0]))  # dE/dμ = -Λ(x - μ)
    np.testing.assert_allclose(
        grad.precision, 0.5 * jnp.outer(jnp.array([1.0, 2.0]), jnp.ones(2) * jnp.array([1.0, 2.0]))
    )
    assert float(jax.jit(lambda m: m.energy(jnp.zeros(2)))(g2)) == pytest.approx(2.0)
    # d log Z / dΛ = -½ Λ⁻¹
    dlz = jax.grad(lambda m: m.log_partition())(g2)
    np.testing.assert_allclose(dlz.precision, -0.5 * jnp.linalg.inv(g2.precision), rtol=1e-5)


def test_gaussian_bad_inputs():
    with pytest.raises(ValueError, match="positive definite"):
        umrf.models.Gaussian(jnp.zeros(2), jnp.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="symmetric"):
        umrf.models.Gaussian(jnp.zeros(2), jnp.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="shape"):
        umrf.models.Gaussian(jnp.zeros(3), jnp.eye(2))
    with pytest.raises(ValueError, match="mean"):
        umrf.models.Gaussian(jnp.array([0.0, jnp.nan]), jnp.eye(2))
    g = umrf.models.Gaussian(jnp.zeros(2), jnp.eye(2))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        g.energy(jnp.zeros((5, 2)))  # a batch: must vmap
    with pytest.raises(ValueError, match="temperature"):
        g.log_partition(temperature=0.0)


def test_energy_derivatives_match_the_plain_quadratic_form():
    """The one-product derivative rule equals autodiff of ½ rᵀΛr to second order."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(5)
        d = 4
        a = rng.normal(size=(d, d))
        precision = jnp.asarray(a @ a.T + d * np.eye(d))
        mean, x = jnp.asarray(rng.normal(size=d)), jnp.asarray(rng.normal(size=d))

        def plain(mean, precision, x):
            r = x - mean
            return 0.5 * r @ precision @ r

        def umrf_energy(mean, precision, x):
            # tree_unflatten skips validation, so finite differences may perturb Λ freely.
            return Gaussian.tree_unflatten(None, (mean, precision)).energy(x)

        args = (mean, precision, x)
        for argnums in (0, 1, 2):
            np.testing.assert_allclose(
                jax.grad(umrf_energy, argnums)(*args), jax.grad(plain, argnums)(*args), atol=1e-12
            )
        np.testing.assert_allclose(jax.hessian(umrf_energy, 2)(*args), precision, atol=1e-12)
        check_grads(umrf_energy, args, order=2, modes=["fwd", "rev"])
