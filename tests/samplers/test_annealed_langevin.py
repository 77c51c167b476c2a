"""Annealed Langevin (Song & Ermon 2019, Alg. 1): mode weights, the step convention, shapes."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf

SIGMAS = tuple(float(s) for s in np.geomspace(10.0, 0.1, 10))


def noised_score(gm, x, sigma):
    """Exact noise-conditional score: the mixture convolved with N(0, σ² I)."""
    return gm.convolve(sigma).score(x)


def two_mode_mixture():
    means = jnp.array([[-4.0, 0.0], [4.0, 0.0]])
    return umrf.models.GaussianMixture.isotropic(jnp.array([0.8, 0.2]), means, 0.5)


def test_annealed_recovers_mode_weights_plain_langevin_does_not():
    gm = two_mode_mixture()
    x0 = jax.random.uniform(jax.random.key(0), (1000, 2), minval=-8.0, maxval=8.0)
    eps = 0.01
    annealed = umrf.samplers.annealed_langevin(
        noised_score, sigmas=SIGMAS, steps_per_level=50, eps=eps
    )
    final, _ = umrf.sample_chains(annealed, jax.random.key(1), gm, x0, num_steps=1)
    w_annealed = float(jnp.mean(final.position[:, 0] < 0))
    # plain Langevin: the same number of updates at the smallest level, from the same starts
    plain = umrf.samplers.ula(lambda m, x: -m.convolve(SIGMAS[-1]).log_prob(x), step_size=eps / 2)
    final_plain, _ = umrf.sample_chains(plain, jax.random.key(1), gm, x0, num_steps=500)
    w_plain = float(jnp.mean(final_plain.position[:, 0] < 0))
    assert w_annealed == pytest.approx(0.8, abs=0.04)
    assert abs(w_plain - 0.8) > 0.2  # stuck in the basin it started in (≈ 0.5)
    # samples sit on the modes, not in between
    assert float(jnp.mean(jnp.abs(jnp.abs(final.position[:, 0]) - 4.0) < 2.0)) > 0.98


def test_step_convention_is_alpha_over_two_drift_sqrt_alpha_noise():
    # One level on data N(0, 1) with score -x/(1+σ²) is ULA with τ = α/2: the stationary
    # variance v/(1 - τ/(2v)) (v = 1 + σ²) is 4/3 for α = 1, whereas the "x + α s + sqrt(2α) z"
    # convention would give 2.
    score = lambda p, x, s: -x / (1.0 + s**2)  # noqa: E731
    alg = umrf.samplers.annealed_langevin(score, sigmas=[1e-3], steps_per_level=60, eps=1.0)
    final, trace = umrf.sample_chains(
        alg, jax.random.key(2), None, jnp.zeros((4000, 1)), num_steps=1
    )
    assert trace.position.shape == (1, 4000, 1)
    assert float(jnp.var(final.position)) == pytest.approx(4.0 / 3.0, rel=0.06)


def test_level_step_sizes_scale_with_sigma_squared():
    # Deterministic check of α_i = eps σ_i²/σ_L² on a score that is zero: only noise acts,
    # so after the pass Var(x) = Σ_i T α_i exactly in distribution.
    score = lambda p, x, s: jnp.zeros_like(x)  # noqa: E731
    sigmas, eps, t = [2.0, 1.0, 0.5], 0.01, 5
    alg = umrf.samplers.annealed_langevin(score, sigmas=sigmas, steps_per_level=t, eps=eps)
    final, _ = umrf.sample_chains(alg, jax.random.key(3), None, jnp.zeros((20000, 1)), num_steps=1)
    expected = t * sum(eps * s**2 / sigmas[-1] ** 2 for s in sigmas)
    assert float(jnp.var(final.position)) == pytest.approx(expected, rel=0.03)


def test_annealed_jit_vmap_no_recompile_and_divergence():
    gm = two_mode_mixture()
    alg = umrf.samplers.annealed_langevin(
        noised_score, sigmas=SIGMAS[:3], steps_per_level=5, eps=0.01
    )

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(key, x, m):
        keys = jax.random.split(key, x.shape[0])
        states = jax.vmap(alg.init, in_axes=(0, None))(x, m)
        return jax.vmap(alg.step, in_axes=(0, 0, None))(keys, states, m)

    s, info = run(jax.random.key(0), jnp.zeros((3, 2)), gm)
    other = umrf.models.GaussianMixture.isotropic(jnp.array([0.5, 0.5]), gm.means, 1.0)
    run(jax.random.key(0), jnp.zeros((3, 2)), other)
    assert s.position.shape == (3, 2) and not bool(info.diverged.any())

    repulsive = lambda p, x, s: 50.0 * x  # noqa: E731  explodes geometrically
    bad = umrf.samplers.annealed_langevin(repulsive, sigmas=[1.0, 0.5], steps_per_level=50, eps=0.5)
    state, info = bad.step(jax.random.key(1), bad.init(jnp.ones(2), None), None)
    assert bool(info.diverged) and not np.isfinite(np.asarray(state.position)).all()


def test_annealed_bad_inputs():
    score = lambda p, x, s: -x  # noqa: E731
    with pytest.raises(ValueError, match="decreasing"):
        umrf.samplers.annealed_langevin(score, sigmas=[0.1, 1.0], steps_per_level=10, eps=0.1)
    with pytest.raises(ValueError, match="sigmas"):
        umrf.samplers.annealed_langevin(score, sigmas=[1.0, -0.1], steps_per_level=10, eps=0.1)
    with pytest.raises(ValueError, match="sigmas"):
        umrf.samplers.annealed_langevin(score, sigmas=[], steps_per_level=10, eps=0.1)
    with pytest.raises(ValueError, match="steps_per_level"):
        umrf.samplers.annealed_langevin(score, sigmas=[1.0], steps_per_level=0, eps=0.1)
    with pytest.raises(TypeError, match="steps_per_level"):
        umrf.samplers.annealed_langevin(score, sigmas=[1.0], steps_per_level=2.5, eps=0.1)
    with pytest.raises(ValueError, match="eps"):
        umrf.samplers.annealed_langevin(score, sigmas=[1.0], steps_per_level=10, eps=0.0)
    with pytest.raises(TypeError, match="score_fn"):
        umrf.samplers.annealed_langevin(3, sigmas=[1.0], steps_per_level=10, eps=0.1)
