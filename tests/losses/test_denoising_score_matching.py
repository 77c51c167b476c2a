"""Denoising and multi-noise score matching: optima, λ(σ) = σ², NaN, jit, errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import umrf
from umrf.losses import (
    denoising_score_matching,
    geometric_sigmas,
    multiscale_denoising_score_matching,
)

D = 2
MU = np.array([1.0, -0.5])
L = np.array([[0.8, 0.0], [0.5, 0.6]])


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(n, D)) @ L.T + MU, jnp.float32)


def gaussian_energy(params, x):
    p = 0.5 * (params["A"] + params["A"].T)
    z = x - params["m"]
    return 0.5 * z @ p @ z


def minimise(f, p0, iters=60):
    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(f)

    @jax.jit
    def run(p):
        def body(carry, _):
            p, s = carry
            v, g = vg(p, state=s)
            u, s = opt.update(g, s, p, value=v, grad=g, value_fn=f)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(body, (p, opt.init(p)), None, length=iters)
        return p

    return run(p0)


def test_dsm_optimum_is_data_covariance_plus_sigma2():
    # Vincent (2011): DSM fits the score of p_data * N(0, σ²I). For Gaussian
    # data N(μ, Σ) the Gaussian model's optimum is N(μ, Σ + σ²I).
    sigma = 0.5
    x = data(20000)
    key = jax.random.key(0)
    score = umrf.score(gaussian_energy)
    p = minimise(
        lambda q: denoising_score_matching(score, key, q, x, sigma=sigma),
        {"A": jnp.eye(D), "m": jnp.zeros(D)},
    )
    x64 = np.asarray(x, np.float64)
    cov = np.linalg.inv(0.5 * (np.asarray(p["A"]) + np.asarray(p["A"]).T))
    target = np.cov(x64, rowvar=False) + sigma**2 * np.eye(D)
    np.testing.assert_allclose(p["m"], x64.mean(0), atol=0.03)
    np.testing.assert_allclose(cov, target, atol=0.03)
    # ...and clearly not the clean covariance (σ² = 0.25 on the diagonal).
    assert np.all(np.diag(cov) - np.diag(np.cov(x64, rowvar=False)) > 0.2)


def test_multiscale_recovers_data_covariance_with_noise_conditional_model():
    # With the exact noise-conditional family s(x, σ) = -(C + σ²I)⁻¹(x - m),
    # every level is minimised at C = Σ, so the weighted sum is too.
    x = data(20000, seed=1)
    sigmas = geometric_sigmas(1.0, 0.1, 4)

    def score(params, x, sigma):
        c = params["B"] @ params["B"].T + sigma**2 * jnp.eye(D)
        return -jnp.linalg.solve(c, x - params["m"])

    key = jax.random.key(3)
    p = minimise(
        lambda q: multiscale_denoising_score_matching(score, key, q, x, sigmas=sigmas),
        {"B": jnp.eye(D), "m": jnp.zeros(D)},
    )
    x64 = np.asarray(x, np.float64)
    cov = np.asarray(p["B"] @ p["B"].T)
    np.testing.assert_allclose(p["m"], x64.mean(0), atol=0.03)
    np.testing.assert_allclose(cov, np.cov(x64, rowvar=False), atol=0.04)


def test_lambda_sigma_squared_weighting():
    # One level: the multi-noise loss is σ² times the single-level DSM loss
    # (in expectation; both are Monte Carlo over the noise).
    x = data(40000, seed=2)

    def score_nc(p, x, s):
        return -p * (x - jnp.asarray(MU, x.dtype)) / (1.0 + s**2)

    for sigma in (0.3, 2.0):
        single = jax.jit(
            lambda k, s=sigma: denoising_score_matching(
                lambda p, x: score_nc(p, x, s), k, 0.7, x, sigma=s
            )
        )
        multi = jax.jit(
            lambda k, s=sigma: multiscale_denoising_score_matching(
                score_nc, k, 0.7, x, sigmas=jnp.array([s])
            )
        )
        a = np.mean([float(single(jax.random.key(i))) for i in range(4)])
        b = np.mean([float(multi(jax.random.key(100 + i))) for i in range(4)])
        np.testing.assert_allclose(b, sigma**2 * a, rtol=0.02)


def test_dsm_closed_form_value_with_fixed_noise():
    # With the noise re-derived from the key, the loss is ½ mean ‖s(x + σε) + ε/σ‖².
    x = data(64)
    key = jax.random.key(5)
    sigma = 0.4
    eps = jax.random.normal(jax.random.split(key, 1)[0], x.shape)

    def score(p, x):
        return -p * x

    got = denoising_score_matching(score, key, 1.3, x, sigma=sigma)
    manual = 0.5 * jnp.mean(jnp.sum((-1.3 * (x + sigma * eps) + eps / sigma) ** 2, axis=1))
    np.testing.assert_allclose(got, manual, rtol=1e-5)


def test_geometric_sigmas():
    s = np.asarray(geometric_sigmas(10.0, 0.01, 10))
    assert s.shape == (10,) and s[0] == pytest.approx(10.0) and s[-1] == pytest.approx(0.01)
    np.testing.assert_allclose(s[1:] / s[:-1], (0.001) ** (1 / 9), rtol=1e-5)
    assert geometric_sigmas(0.5, 0.5, 1).tolist() == [0.5]
    with pytest.raises(ValueError, match="sigma_min"):
        geometric_sigmas(0.1, 1.0, 5)
    with pytest.raises(ValueError, match="sigma_max"):
        geometric_sigmas(0.0, 0.0, 5)
    with pytest.raises(ValueError, match="num"):
        geometric_sigmas(1.0, 0.1, 0)
    with pytest.raises(ValueError, match="num"):
        geometric_sigmas(1.0, 0.1, 1)


def test_nan_flagged_jit_no_recompile():
    x = jnp.array([[1.0, 2.0], [3.0, 0.5]])

    def bad(p, x):
        return jnp.where(x[0] > 0.0, jnp.nan, 1.0) * x

    loss, info = denoising_score_matching(
        bad, jax.random.key(0), None, x, sigma=1e-3, return_info=True
    )
    assert np.isnan(float(loss)) and not bool(info.is_finite) and int(info.num_nonfinite) == 2

    xs = data(128)
    sig = geometric_sigmas(1.0, 0.1, 3)

    def score_nc(p, x, s):
        return -p * x / (1.0 + s**2)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(p, key):
        return multiscale_denoising_score_matching(score_nc, key, p, xs, sigmas=sig)

    f(1.0, jax.random.key(0))
    f(2.0, jax.random.key(1))
    vm = jax.vmap(
        lambda p: denoising_score_matching(lambda q, x: -q * x, jax.random.key(0), p, xs, sigma=0.3)
    )(jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(
        vm[1],
        denoising_score_matching(lambda q, x: -q * x, jax.random.key(0), 2.0, xs, sigma=0.3),
        rtol=1e-5,
    )


def test_bad_inputs():
    def s(p, x):
        return -x

    x = jnp.ones((4, 2))
    key = jax.random.key(0)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            denoising_score_matching(s, key, None, x, sigma=bad)
    with pytest.raises(TypeError):
        denoising_score_matching(s, None, x, key, 0.1)  # sigma is keyword-only

    def snc(p, x, sig):
        return -x

    with pytest.raises(ValueError, match="sigmas"):
        multiscale_denoising_score_matching(snc, key, None, x, sigmas=[1.0, -0.1])
    with pytest.raises(ValueError, match="sigmas"):
        multiscale_denoising_score_matching(snc, key, None, x, sigmas=[])
    with pytest.raises(ValueError, match="sigmas"):
        multiscale_denoising_score_matching(snc, key, None, x, sigmas=[[1.0]])
    with pytest.raises(TypeError, match="key"):
        denoising_score_matching(s, None, None, x, sigma=0.1)
