"""Gaussian mixture: exact log-density (normalised), sampling weights, noised scores."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf


@pytest.fixture(scope="module")
def gm():
    covs = jnp.array(
        [[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 0.4]], [[0.2, -0.1], [-0.1, 0.3]]]
    )
    means = jnp.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
    return umrf.models.GaussianMixture(jnp.array([0.5, 0.3, 0.2]), means, covs)


def test_density_is_normalised_and_matches_direct_formula(gm):
    grid = np.linspace(-8, 8, 401)
    xx, yy = np.meshgrid(grid, grid, indexing="ij")
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
    p = np.exp(np.asarray(jax.vmap(gm.log_prob)(pts), np.float64))
    h = grid[1] - grid[0]
    assert p.sum() * h * h == pytest.approx(1.0, abs=1e-4)
    # direct formula at one point
    x = np.array([0.3, -0.7])
    direct = 0.0
    for w, m, c in zip(gm.weights, gm.means, gm.covariances, strict=True):
        c, m = np.asarray(c, np.float64), np.asarray(m, np.float64)
        r = x - m
        direct += (
            float(w)
            * math.exp(-0.5 * r @ np.linalg.solve(c, r))
            / (2 * math.pi * math.sqrt(np.linalg.det(c)))
        )
    assert float(gm.log_prob(jnp.asarray(x, jnp.float32))) == pytest.approx(
        math.log(direct), rel=1e-5
    )
    assert float(gm.energy(jnp.asarray(x, jnp.float32))) == pytest.approx(
        -math.log(direct), rel=1e-5
    )


def test_samples_follow_the_weights_and_responsibilities(gm):
    x = gm.sample(jax.random.key(0), 60000)
    assert x.shape == (60000, 2)
    comp = jnp.argmax(jax.vmap(gm.responsibilities)(x), axis=1)
    freq = np.bincount(np.asarray(comp), minlength=3) / 60000
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.2], atol=0.01)  # modes well separated
    np.testing.assert_allclose(np.asarray(x).mean(0), np.asarray(gm.weights @ gm.means), atol=0.02)


def test_convolved_score_matches_monte_carlo_noising(gm):
    # p_σ = p * N(0, σ²I): its log-density at a point equals log E_y[N(x; y, σ²I)], y ~ p.
    sigma = 0.7
    noised = gm.convolve(sigma)
    y = gm.sample(jax.random.key(1), 400000)
    x = jnp.array([0.5, 0.5])
    kernel = jnp.exp(-jnp.sum((x[None, :] - y) ** 2, axis=1) / (2 * sigma**2)) / (
        2 * math.pi * sigma**2
    )
    assert float(noised.log_prob(x)) == pytest.approx(math.log(float(kernel.mean())), abs=0.02)
    np.testing.assert_allclose(noised.score(x), jax.grad(noised.log_prob)(x), rtol=1e-6)


def test_isotropic_and_bad_inputs():
    g = umrf.models.GaussianMixture.isotropic([0.5, 0.5], [[0.0], [1.0]], [1.0, 2.0])
    np.testing.assert_allclose(g.covariances[:, 0, 0], [1.0, 4.0])
    with pytest.raises(ValueError, match="sum to 1"):
        umrf.models.GaussianMixture.isotropic([0.5, 0.6], [[0.0], [1.0]], 1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        umrf.models.GaussianMixture.isotropic([1.5, -0.5], [[0.0], [1.0]], 1.0)
    with pytest.raises(ValueError, match="means"):
        umrf.models.GaussianMixture.isotropic([0.5, 0.5], [[0.0], [1.0], [2.0]], 1.0)
    with pytest.raises(ValueError, match="std"):
        umrf.models.GaussianMixture.isotropic([0.5, 0.5], [[0.0], [1.0]], 0.0)
    with pytest.raises(ValueError, match="positive definite"):
        umrf.models.GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match=r"shape \(1,\)"):
        g.log_prob(jnp.zeros(2))
