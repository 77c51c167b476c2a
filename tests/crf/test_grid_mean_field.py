"""Grid CRF mean field vs a dense reference, fixed points, free-energy bound, batching."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from umrf.crf import (
    GridKernels,
    grid_crf_energy,
    grid_mean_field,
    grid_mean_field_free_energy,
    grid_mean_field_update,
    potts_compatibility,
)
from umrf.crf._mean_field import dense_window_kernel

KERNELS = GridKernels(
    spatial_weight=0.7,
    spatial_bandwidth=1.3,
    bilateral_weight=1.1,
    bilateral_spatial_bandwidth=2.0,
    bilateral_color_bandwidth=0.5,
)


def _problem(seed, H, W, C, F=3):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(H, W, C)).astype(np.float32)
    img = rng.uniform(size=(H, W, F)).astype(np.float32)
    mu = rng.normal(size=(C, C)).astype(np.float32)  # asymmetric on purpose
    return z, img, mu


def _dense_update(q, z, img, mu, kernels, radius):
    H, W, C = z.shape
    K = dense_window_kernel(img, kernels, radius)
    mu_s = 0.5 * (mu + mu.T)
    logits = z.reshape(-1, C) - K @ q.reshape(-1, C) @ mu_s.T
    logits -= logits.max(-1, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(-1, keepdims=True)).reshape(H, W, C)


@pytest.mark.parametrize("radius", [1, 2])
def test_update_matches_dense_reference(radius):
    z, img, mu = _problem(0, 5, 6, 3)
    q = jax.nn.softmax(jnp.asarray(_problem(1, 5, 6, 3)[0]), -1)
    got = grid_mean_field_update(z, mu, KERNELS, img, q, radius=radius)
    ref = _dense_update(np.asarray(q, np.float64), z, img, mu, KERNELS, radius)
    np.testing.assert_allclose(got, ref, atol=2e-6)
    # Three unrolled iterations from softmax(z) equal three dense updates.
    out = jax.nn.softmax(grid_mean_field(z, mu, KERNELS, img, num_iters=3, radius=radius), -1)
    qd = np.asarray(jax.nn.softmax(jnp.asarray(z, jnp.float32), -1), np.float64)
    for _ in range(3):
        qd = _dense_update(qd, z, img, mu, KERNELS, radius)
    np.testing.assert_allclose(out, qd, atol=1e-5)


def test_converged_marginals_are_a_fixed_point():
    z, img, _ = _problem(2, 8, 8, 4)
    mu = potts_compatibility(4)
    kernels = KERNELS._replace(spatial_weight=0.2, bilateral_weight=0.2)
    q = jax.nn.softmax(grid_mean_field(z, mu, kernels, img, num_iters=40, radius=2), -1)
    q_next = grid_mean_field_update(z, mu, kernels, img, q, radius=2)
    np.testing.assert_allclose(q_next, q, atol=1e-5)
    # ... and not a fixed point after a single iteration (the test has teeth).
    q1 = jax.nn.softmax(grid_mean_field(z, mu, kernels, img, num_iters=1, radius=2), -1)
    assert np.abs(np.asarray(grid_mean_field_update(z, mu, kernels, img, q1)) - q1).max() > 1e-3


def test_free_energy_upper_bounds_minus_log_z_by_enumeration():
    H, W, C = 2, 3, 3
    z, img, mu = _problem(3, H, W, C)
    z = z * 1.5
    mu = 0.5 * (mu + mu.T) + 1.0
    labels = jnp.asarray(list(itertools.product(range(C), repeat=H * W))).reshape(-1, H, W)
    energies = jax.vmap(lambda x: grid_crf_energy(z, mu, KERNELS, img, x, radius=1))(labels)
    # Brute-force energy of one labelling, straight from the definition.
    x = np.asarray(labels[123])
    K = dense_window_kernel(img, KERNELS, 1)
    flat = x.reshape(-1)
    ref = -z.reshape(-1, C)[np.arange(H * W), flat].sum() + 0.5 * np.sum(
        K * mu[flat[:, None], flat[None, :]]
    )
    np.testing.assert_allclose(energies[123], ref, rtol=1e-5)
    log_z = jax.nn.logsumexp(-energies)
    q = jax.nn.softmax(grid_mean_field(z, mu, KERNELS, img, num_iters=30, radius=1), -1)
    f_mf = grid_mean_field_free_energy(z, mu, KERNELS, img, q, radius=1)
    f_unary = grid_mean_field_free_energy(z, mu, KERNELS, img, jax.nn.softmax(z, -1), radius=1)
    assert f_mf >= -log_z - 1e-5
    assert f_unary >= -log_z - 1e-5
    assert f_mf < f_unary  # mean field improves on the unaries alone
    # Exact identity for a one-hot q: F = E(x).
    onehot = jax.nn.one_hot(labels[7], C)
    np.testing.assert_allclose(
        grid_mean_field_free_energy(z, mu, KERNELS, img, onehot, radius=1), energies[7], rtol=1e-6
    )


def test_batched_jit_vmap_and_no_recompile():
    B, H, W, C = 3, 6, 7, 4
    rng = np.random.default_rng(4)
    z = rng.normal(size=(B, H, W, C)).astype(np.float32)
    img = rng.uniform(size=(B, H, W, 3)).astype(np.float32)
    mu = potts_compatibility(C)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(z, img, mu, kernels):
        return grid_mean_field(z, mu, kernels, img, num_iters=4)

    kernels = GridKernels(*(jnp.asarray(v, jnp.float32) for v in KERNELS))
    batched = run(z, img, mu, kernels)
    single = jax.vmap(lambda a, b: grid_mean_field(a, mu, KERNELS, b, num_iters=4))(z, img)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(
        batched[1], grid_mean_field(z[1], mu, KERNELS, img[1], num_iters=4), atol=1e-5
    )
    new = GridKernels(*(v * 1.1 for v in kernels))
    run(z, img, mu * 2.0, new)  # new parameters: same compiled program
    assert grid_mean_field(z, mu, KERNELS, img, num_iters=0).shape == z.shape


def test_gradients_wrt_kernel_params_are_finite_and_match_finite_differences():
    with jax.enable_x64(True):
        z, img, mu = (np.asarray(a, np.float64) for a in _problem(5, 4, 4, 3))
        target = jax.nn.one_hot(jnp.asarray(np.random.default_rng(0).integers(0, 3, (4, 4))), 3)

        @jax.jit
        def loss(params):
            out = grid_mean_field(
                z, params["mu"], GridKernels(*params["k"]), img, num_iters=3, radius=1
            )
            return -jnp.sum(target * jax.nn.log_softmax(out, -1))

        params = {"mu": jnp.asarray(mu), "k": tuple(jnp.asarray(float(v)) for v in KERNELS)}
        g = jax.grad(loss)(params)
        leaves = jax.tree_util.tree_leaves(g)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)
        eps = 1e-6
        for i in range(5):
            up = params | {"k": tuple(v + eps * (j == i) for j, v in enumerate(params["k"]))}
            dn = params | {"k": tuple(v - eps * (j == i) for j, v in enumerate(params["k"]))}
            fd = (loss(up) - loss(dn)) / (2 * eps)
            np.testing.assert_allclose(g["k"][i], fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        ({"image": np.zeros((4, 5, 3))}, ValueError, "image"),
        ({"compatibility": np.zeros((2, 2))}, ValueError, "compatibility"),
        ({"kernels": (1.0, 1.0, 1.0, 1.0, 1.0)}, TypeError, "GridKernels"),
        ({"kernels": GridKernels(spatial_bandwidth=0.0)}, ValueError, "spatial_bandwidth"),
        ({"kernels": GridKernels(bilateral_weight=-1.0)}, ValueError, "bilateral_weight"),
        ({"num_iters": -1}, ValueError, "num_iters"),
        ({"num_iters": 2.0}, TypeError, "num_iters"),
        ({"unary_logits": np.zeros((4, 3))}, ValueError, "unary_logits"),
        ({"unary_logits": np.full((4, 4, 3), np.nan)}, ValueError, "unary_logits"),
    ],
)
def test_bad_input(kwargs, err, match):
    args = {
        "unary_logits": np.zeros((4, 4, 3), np.float32),
        "image": np.zeros((4, 4, 3), np.float32),
        "compatibility": potts_compatibility(3),
        "kernels": GridKernels(),
        "num_iters": 2,
    } | kwargs
    with pytest.raises(err, match=match):
        grid_mean_field(**args)
