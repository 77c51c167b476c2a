"""MALA: exact invariance (variance, anisotropic moments, mixture weights), info, divergence."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.samplers import _mala
from umrf.samplers._langevin import normal_like_and_uniform


def quadratic(s2, x):
    return 0.5 * jnp.sum(x**2) / s2


def model_energy(model, x):
    return model.energy(x)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_mala_stationary_variance_is_exact(temperature):
    # Same target and step as the ULA bias test (ULA's variance is 25 % too large there),
    # and a larger step where ULA would give 4x the variance: MALA stays exact.
    s2 = 2.25
    taus = (0.9, 1.5 * s2) if temperature == 1.0 else (0.9 * temperature,)
    for tau in taus:
        alg = umrf.samplers.mala(quadratic, step_size=tau, temperature=temperature)
        x0 = jnp.zeros((2048, 1))
        _, trace = umrf.sample_chains(alg, jax.random.key(1), jnp.float32(s2), x0, num_steps=400)
        var = float(jnp.mean(trace.position[50:] ** 2))
        assert var == pytest.approx(temperature * s2, rel=0.03)
        rate = trace.info.acceptance_rate[50:]
        # E[is_accepted] = E[acceptance_rate]
        assert float(trace.info.is_accepted[50:].mean()) == pytest.approx(
            float(rate.mean()), abs=0.01
        )


def anisotropic_gaussian(d=10):
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    scales = np.geomspace(0.5, 2.0, d)  # condition number 16 of the covariance
    cov = (q * scales**2) @ q.T
    mean = rng.normal(size=d)
    model = umrf.models.Gaussian.from_covariance(
        jnp.asarray(mean, jnp.float32), jnp.asarray(cov, jnp.float32)
    )
    return model, q, scales


def test_mala_moments_on_anisotropic_10d_gaussian():
    model, q, scales = anisotropic_gaussian()
    # chains start at exact samples; MALA must leave the law invariant
    x0 = model.sample(jax.random.key(2), (1024,))
    alg = umrf.samplers.mala(model_energy, step_size=0.12)
    _, trace = umrf.sample_chains(alg, jax.random.key(3), model, x0, num_steps=200, thin=4)
    rate = float(trace.info.acceptance_rate.mean())
    assert 0.4 < rate < 0.9
    xs = np.asarray(trace.position, np.float64).reshape(-1, 10)
    np.testing.assert_allclose(xs.mean(0), model.mean, atol=0.08)
    # variances along the principal axes (rotated by the eigenvectors q): the stiff axes mix
    # in a few steps; dropping the MH proposal correction inflates them by ~25 %
    var_axes = np.var((xs - np.asarray(model.mean)) @ q, axis=0)
    np.testing.assert_allclose(var_axes / scales**2, 1.0, atol=0.07)
    cov = np.cov(xs.T)
    true = np.asarray(model.covariance, np.float64)
    assert np.max(np.abs(cov - true)) / np.max(np.abs(true)) < 0.07


def test_mala_mode_weights_of_unequal_mixture():
    gm = umrf.models.GaussianMixture.isotropic(
        jnp.array([0.25, 0.75]), jnp.array([[-1.5, 0.0], [1.5, 0.5]]), 0.7
    )
    alg = umrf.samplers.mala(model_energy, step_size=0.3)
    x0 = jnp.zeros((1024, 2))  # every chain starts at the saddle
    _, trace = umrf.sample_chains(alg, jax.random.key(4), gm, x0, num_steps=1500, thin=5)
    right = float(jnp.mean(trace.position[100:, :, 0] > 0))
    # exact P(x_0 > 0) = Σ_k w_k Φ(μ_k0 / σ)
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    exact = 0.25 * phi(-1.5 / 0.7) + 0.75 * phi(1.5 / 0.7)
    assert right == pytest.approx(exact, abs=0.02)


def test_mala_acceptance_ratio_matches_direct_formula():
    # log α = -(E(y) - E(x))/T + log q(x|y) - log q(y|x) with the exact Gaussian proposal.
    energy = lambda p, x: jnp.sum(p * x**4) + 0.3 * x[0] * x[1]  # noqa: E731
    tau, temp = 0.05, 1.7
    p = jnp.array([0.5, 1.5])
    x = jnp.array([0.8, -0.4])
    key = jax.random.key(5)
    alg = umrf.samplers.mala(energy, step_size=tau, temperature=temp)
    _, info = alg.step(key, alg.init(x, p), p)
    # One draw gives the proposal noise and the acceptance uniform (see the helper's test).
    z, u = normal_like_and_uniform(key, x)
    y = x - tau * jax.grad(energy, 1)(p, x) / temp + jnp.sqrt(2 * tau) * z

    def log_q(to, frm):
        m = frm - tau * jax.grad(energy, 1)(p, frm) / temp
        return -jnp.sum((to - m) ** 2) / (4 * tau)

    log_alpha = -(energy(p, y) - energy(p, x)) / temp + log_q(x, y) - log_q(y, x)
    alpha = jnp.minimum(1.0, jnp.exp(log_alpha))
    np.testing.assert_allclose(info.acceptance_rate, alpha, 1e-5)
    assert bool(info.is_accepted) == bool(u < alpha)


def test_mala_jit_vmap_no_recompile_on_new_params():
    model = anisotropic_gaussian(3)[0]
    alg = umrf.samplers.mala(model_energy, step_size=0.2)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(key, x, m):
        keys = jax.random.split(key, x.shape[0])
        states = jax.vmap(alg.init, in_axes=(0, None))(x, m)
        return jax.vmap(alg.step, in_axes=(0, 0, None))(keys, states, m)

    x = jnp.zeros((7, 3))
    s1, i1 = run(jax.random.key(0), x, model)
    other = umrf.models.Gaussian(model.mean + 1.0, 2.0 * model.precision)
    s2, _ = run(jax.random.key(0), x, other)  # new model numbers, same program
    assert i1.is_accepted.shape == (7,) and s1.energy.shape == (7,)
    np.testing.assert_allclose(s2.energy, jax.vmap(other.energy)(s2.position), rtol=1e-5)


def test_mala_rejects_and_flags_nonfinite_proposals():
    # The energy is NaN for x > 1: such proposals are rejected and flagged, never accepted.
    energy = lambda p, x: jnp.where(x[0] > 1.0, jnp.nan, 0.5 * jnp.sum(x**2))  # noqa: E731
    alg = umrf.samplers.mala(energy, step_size=0.5)
    final, trace = umrf.sample_chains(
        alg, jax.random.key(6), None, jnp.zeros((256, 1)), num_steps=200
    )
    diverged = np.asarray(trace.info.diverged)
    assert diverged.any() and not diverged.all()
    assert np.all(np.asarray(trace.position) <= 1.0)
    assert np.all(np.asarray(trace.info.acceptance_rate)[diverged] == 0.0)
    assert not np.asarray(trace.info.is_accepted)[diverged].any()
    assert np.isfinite(np.asarray(final.energy)).all()


def test_mala_build_kernel_takes_a_traced_step_size():
    kernel = _mala.build_kernel(quadratic)
    state = _mala.init(jnp.ones(2), 1.0, quadratic)
    f = jax.jit(kernel)
    a, _ = f(jax.random.key(0), state, 1.0, 0.1)
    b, _ = f(jax.random.key(0), state, 1.0, 0.2)
    alg_state, _ = umrf.samplers.mala(quadratic, step_size=0.1).step(jax.random.key(0), state, 1.0)
    np.testing.assert_allclose(a.position, alg_state.position, rtol=1e-6)
    assert a.position.shape == b.position.shape


def test_mala_bad_inputs():
    with pytest.raises(ValueError, match="step_size"):
        umrf.samplers.mala(quadratic, step_size=0.0)
    with pytest.raises(ValueError, match="step_size"):
        umrf.samplers.mala(quadratic, step_size=float("inf"))
    with pytest.raises(ValueError, match="temperature"):
        umrf.samplers.mala(quadratic, step_size=0.1, temperature=-1.0)
    with pytest.raises(TypeError, match="energy_fn"):
        umrf.samplers.mala(None, step_size=0.1)
    model = anisotropic_gaussian(3)[0]
    alg = umrf.samplers.mala(model_energy, step_size=0.1)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        alg.init(jnp.zeros(4), model)  # mismatched shapes
