"""Fréchet distance and PCA against closed forms and an independent matrix square root."""

import numpy as np
import pytest
import scipy.linalg

import umrf


def test_matches_the_formula_with_scipy_sqrtm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4))
    y = rng.normal(size=(200, 4)) @ rng.normal(size=(4, 4)) + 0.3
    mx, my = x.mean(0), y.mean(0)
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    expected = np.sum((mx - my) ** 2) + np.trace(cx + cy - 2 * scipy.linalg.sqrtm(cx @ cy).real)
    np.testing.assert_allclose(umrf.metrics.frechet_distance(x, y), expected, rtol=1e-8)


def test_diagonal_closed_form_and_identity():
    # Sample sets whose sample means and (n-1)-covariances are exactly diagonal:
    # d² = ‖Δμ‖² + Σ (σ_x - σ_y)².
    base = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])  # mean 0, cov 4/3 I
    x = base * np.array([1.0, 2.0]) + np.array([0.5, 0.0])
    y = base * np.array([3.0, 0.5])
    s = np.sqrt(4 / 3)
    expected = 0.25 + (s * 1.0 - s * 3.0) ** 2 + (s * 2.0 - s * 0.5) ** 2
    np.testing.assert_allclose(umrf.metrics.frechet_distance(x, y), expected, rtol=1e-12)
    assert abs(umrf.metrics.frechet_distance(x, x)) < 1e-12


def test_pca_matches_svd_and_projects():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 3, 2)) * np.array([[3.0, 1.0], [0.5, 0.1], [2.0, 0.2]])
    p = umrf.metrics.pca(x, 2)
    flat = x.reshape(100, 6)
    cov = np.cov(flat, rowvar=False)
    w, v = np.linalg.eigh(cov)
    np.testing.assert_allclose(p.explained_variance, w[::-1][:2], rtol=1e-10)
    np.testing.assert_allclose(np.abs(p.components @ v[:, ::-1][:, :2]), np.eye(2), atol=1e-10)
    z = p.transform(x)
    assert z.shape == (100, 2)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
    # In the PCA space the distance is the distance of the projected samples.
    y = x + 0.5
    np.testing.assert_allclose(
        umrf.metrics.frechet_distance(x, y, projection=p),
        umrf.metrics.frechet_distance(p.transform(x), p.transform(y)),
    )


def test_bad_input():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="features"):
        umrf.metrics.frechet_distance(x, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="n >= 2"):
        umrf.metrics.frechet_distance(x[:1], x)
    with pytest.raises(ValueError, match="num_components"):
        umrf.metrics.pca(x, 4)
    with pytest.raises(TypeError, match="projection"):
        umrf.metrics.frechet_distance(x, x, projection="pca")
    with pytest.raises(ValueError, match="fitted"):
        umrf.metrics.pca(np.eye(5), 2).transform(x)
