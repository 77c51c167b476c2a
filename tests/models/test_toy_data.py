"""2-D toy data sets: shapes, supports, balance, determinism, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf

SETS = [
    umrf.models.two_moons,
    umrf.models.rings,
    umrf.models.checkerboard,
    umrf.models.eight_gaussians,
]


@pytest.mark.parametrize("fn", SETS)
def test_shape_determinism_and_jit(fn):
    x = fn(jax.random.key(0), 1001)
    assert x.shape == (1001, 2) and x.dtype == jnp.float32
    np.testing.assert_array_equal(x, fn(jax.random.key(0), 1001))
    assert not np.array_equal(x, fn(jax.random.key(1), 1001))
    np.testing.assert_allclose(jax.jit(fn, static_argnums=1)(jax.random.key(0), 1001), x, atol=1e-5)
    with pytest.raises(ValueError, match="n"):
        fn(jax.random.key(0), 0)
    with pytest.raises(TypeError, match="n"):
        fn(jax.random.key(0), 10.0)


def test_supports():
    key = jax.random.key(3)
    board = np.asarray(umrf.models.checkerboard(key, 20000))
    assert np.all(np.abs(board) <= 4.0)
    cell = np.floor((board + 4.0) / 2.0).astype(int)
    assert np.all((cell[:, 0] + cell[:, 1]) % 2 == 0)  # dark squares only
    assert len({tuple(c) for c in cell}) == 8

    eight = np.asarray(umrf.models.eight_gaussians(key, 8000))
    angle = np.round(np.arctan2(eight[:, 1], eight[:, 0]) / (np.pi / 4)) % 8
    np.testing.assert_allclose(np.bincount(angle.astype(int), minlength=8) / 8000, 1 / 8, atol=0.02)
    np.testing.assert_allclose(np.linalg.norm(eight, axis=1).mean(), 2.0, atol=0.02)

    r = np.linalg.norm(np.asarray(umrf.models.rings(key, 20000, noise=0.0)), axis=1)
    levels = np.round(r / 0.75)
    np.testing.assert_allclose(r, 0.75 * levels, atol=1e-5)
    np.testing.assert_allclose(
        np.bincount(levels.astype(int))[1:] / 20000, np.arange(1, 5) / 10, atol=0.015
    )

    moons = np.asarray(umrf.models.two_moons(key, 10000, noise=0.0))
    upper = np.isclose(np.linalg.norm(moons + [0.5, 0.25], axis=1), 1.0, atol=1e-5)
    lower = np.isclose(np.linalg.norm(moons + [0.5, 0.25] - [1.0, 0.5], axis=1), 1.0, atol=1e-5)
    assert np.all(upper | lower) and abs(upper.mean() - 0.5) < 0.01
    np.testing.assert_allclose(moons.mean(0), 0.0, atol=0.03)
