"""The optional final denoising step of annealed Langevin (Tweedie's formula).

Data ``N(0, s² I)`` blurred by ``σ`` has the exact score ``-x / (s² + σ²)``, so
the denoising step ``x + σ_L² s(x, σ_L)`` is the linear shrinkage
``x · s² / (s² + σ_L²)`` = ``E[x_0 | x]``: the pass with ``denoise=True`` must
end at exactly that map of the pass without it (same key, same draws), on the
free coordinates only.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf

S2 = 0.5**2
SIGMAS = [2.0, 0.5, 0.2]


def score(p, x, sigma):
    return -x / (S2 + sigma**2)


def build(denoise):
    return umrf.samplers.annealed_langevin(
        score, sigmas=SIGMAS, steps_per_level=30, eps=0.02, denoise=denoise
    )


def test_denoising_step_is_tweedie_shrinkage_of_the_last_level():
    x0 = 2.0 * jax.random.normal(jax.random.key(0), (4000, 3))
    key = jax.random.key(1)
    plain, _ = umrf.sample_chains(build(False), key, None, x0, num_steps=1)
    denoised, info = umrf.sample_chains(build(True), key, None, x0, num_steps=1)
    shrink = S2 / (S2 + SIGMAS[-1] ** 2)
    np.testing.assert_allclose(denoised.position, shrink * plain.position, rtol=1e-5, atol=1e-6)
    assert not bool(info.info.diverged.any())
    # The chain is linear-Gaussian, so its output variance is exact: per update
    # x' = (1 - α_i / (2 (s² + σ_i²))) x + sqrt(α_i) z with α_i = eps σ_i² / σ_L².
    v = 4.0
    for sigma in SIGMAS:
        alpha = 0.02 * sigma**2 / SIGMAS[-1] ** 2
        for _ in range(30):
            v = (1.0 - alpha / (2.0 * (S2 + sigma**2))) ** 2 * v + alpha
    # 12 000 draws: the sample variance has a relative standard error of sqrt(2 / 12 000) = 1.3 %.
    var = float(np.var(np.asarray(denoised.position)))
    assert abs(var / (shrink**2 * v) - 1.0) < 4 * np.sqrt(2 / 12000), (var, shrink**2 * v)
    assert abs(float(np.var(np.asarray(plain.position))) / v - 1.0) < 4 * np.sqrt(2 / 12000)


def test_denoising_touches_only_free_coordinates():
    observed = jnp.zeros((8, 3), bool).at[:, 0].set(True)
    x0 = umrf.samplers.Clamped(jnp.ones((8, 3)), observed)
    key = jax.random.key(2)
    plain, _ = umrf.sample_chains(build(False), key, None, x0, num_steps=1)
    denoised, _ = umrf.sample_chains(build(True), key, None, x0, num_steps=1)
    assert np.array_equal(np.asarray(denoised.position.value[:, 0]), np.ones(8, np.float32))
    shrink = S2 / (S2 + SIGMAS[-1] ** 2)
    np.testing.assert_allclose(
        denoised.position.value[:, 1:], shrink * plain.position.value[:, 1:], rtol=1e-5, atol=1e-6
    )


def test_denoise_option_is_part_of_value_equality_and_checked():
    assert build(True) == build(True) and hash(build(True)) == hash(build(True))
    assert build(True) != build(False)
    assert build(False) == umrf.samplers.annealed_langevin(
        score, sigmas=SIGMAS, steps_per_level=30, eps=0.02
    )
    with pytest.raises(TypeError, match="denoise"):
        umrf.samplers.annealed_langevin(
            score, sigmas=SIGMAS, steps_per_level=30, eps=0.02, denoise="yes"
        )
