"""Clamped (conditional) Langevin sampling against the closed-form Gaussian conditional.

Target: ``E(x) = ½ (x - μ)ᵀ P (x - μ)`` in 4-D. Observing ``x_O = a`` leaves
the Gaussian conditional

    x_F | x_O = a  ~  N(μ_F - P_FF⁻¹ P_FO (a - μ_O),  P_FF⁻¹).

MALA is exact for it. ULA on a Gaussian has the exact mean and the known
discretisation bias of the covariance: with ``A = P_FF / T`` the chain
``x' = x - τ A (x - m) + sqrt(2τ) ε`` is stationary at
``N(m, A⁻¹ (I - τA/2)⁻¹)``, so the test uses that closed form (it tends to
``P_FF⁻¹`` as τ → 0), which makes the check sharp at a moderate step size.

Monte Carlo tolerance: ``z = 5`` standard errors with the ESS of each
statistic (``assert_mc_close``). A sampler that ignores the clamping (free
coordinates follow their *marginal*) and one whose energy never sees the
observed values fail the same check.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.samplers import Clamped

MU = np.array([1.0, -0.5, 0.25, 2.0])
L = np.array(
    [[1.2, 0.0, 0.0, 0.0], [0.6, 1.0, 0.0, 0.0], [-0.4, 0.3, 0.9, 0.0], [0.2, -0.5, 0.4, 1.1]]
)
PRECISION = L @ L.T
OBS_A = np.array([True, False, True, False])  # observe x0, x2
OBS_B = np.array([False, True, False, True])  # observe x1, x3
VALUES = np.array([0.3, 1.5, -1.0, 0.7])  # observed values (the unobserved entries are starts)


def energy(p, x):
    d = x - p["mu"]
    return 0.5 * d @ (p["precision"] @ d)


PARAMS = {"mu": jnp.asarray(MU, jnp.float32), "precision": jnp.asarray(PRECISION, jnp.float32)}


def conditional(observed, tau=0.0, temperature=1.0):
    """Closed-form law of the free coordinates (ULA's stationary law when tau > 0)."""
    f, o = ~observed, observed
    p_ff = PRECISION[np.ix_(f, f)]
    mean = MU[f] - np.linalg.solve(p_ff, PRECISION[np.ix_(f, o)] @ (VALUES[o] - MU[o]))
    a = p_ff / temperature
    cov = np.linalg.inv(a) @ np.linalg.inv(np.eye(f.sum()) - 0.5 * tau * a)
    return mean, cov


def statistics(free_draws, mean):
    """Per draw: the free coordinates and the centred products (their expectations are exact)."""
    c = free_draws - mean
    i, j = np.triu_indices(free_draws.shape[-1])
    return np.concatenate([free_draws, c[..., i] * c[..., j]], axis=-1)


def exact_statistics(mean, cov):
    i, j = np.triu_indices(mean.shape[0])
    return np.concatenate([mean, cov[i, j]])


def start(num_chains, masks):
    observed = np.stack([masks[c % len(masks)] for c in range(num_chains)])
    value = np.where(observed, VALUES, 0.0).astype(np.float32)
    return Clamped(jnp.asarray(value), jnp.asarray(observed))


def run(alg, x0, *, num_steps=1200, thin=4, burn=50, seed=0, mesh=None):
    final, trace = umrf.sample_chains(
        alg, jax.random.key(seed), PARAMS, x0, num_steps=num_steps, thin=thin, mesh=mesh
    )
    return final, np.asarray(trace.position.value)[burn:], trace


def check_conditional(draws, observed, assert_mc_close, **law):
    mean, cov = conditional(observed, **law)
    free = draws[..., ~observed]
    assert_mc_close(statistics(free, mean), exact_statistics(mean, cov), z=5.0, floor=0.0)


@pytest.mark.parametrize("kind", ["mala", "ula"])
def test_clamped_chains_reproduce_the_gaussian_conditional(kind, assert_mc_close):
    tau = 0.2 if kind == "mala" else 0.05
    build = umrf.samplers.mala if kind == "mala" else umrf.samplers.ula
    alg = build(energy, step_size=tau)
    x0 = start(512, [OBS_A, OBS_B])  # per-chain masks: even chains observe A, odd chains B
    final, draws, trace = run(alg, x0)
    law = {} if kind == "mala" else {"tau": tau}
    check_conditional(draws[:, 0::2], OBS_A, assert_mc_close, **law)
    check_conditional(draws[:, 1::2], OBS_B, assert_mc_close, **law)
    # Observed coordinates never change, bit for bit, in the trace and the final state.
    obs = np.asarray(x0.observed)
    value0 = np.asarray(x0.value)
    full = np.asarray(trace.position.value)
    assert np.array_equal(
        np.where(obs, full, 0.0), np.broadcast_to(np.where(obs, value0, 0), full.shape)
    )
    assert np.array_equal(np.asarray(final.position.value)[obs], value0[obs])
    assert np.array_equal(np.asarray(trace.position.observed[0]), obs)
    if kind == "mala":
        assert 0.5 < float(trace.info.acceptance_rate.mean()) < 1.0


def test_ula_at_temperature_targets_the_tempered_conditional(assert_mc_close):
    tau, temperature = 0.05, 0.5
    alg = umrf.samplers.ula(energy, step_size=tau, temperature=temperature)
    _, draws, _ = run(alg, start(256, [OBS_A]))
    check_conditional(draws, OBS_A, assert_mc_close, tau=tau, temperature=temperature)


def test_the_check_fails_for_samplers_that_ignore_the_observations(assert_mc_close):
    """Sabotage: an unclamped chain (free coordinates marginal) and a blind energy both fail."""
    alg = umrf.samplers.mala(energy, step_size=0.2)
    x0 = start(256, [OBS_A])
    _, unclamped = umrf.sample_chains(
        alg, jax.random.key(0), PARAMS, x0.value, num_steps=1200, thin=4
    )
    with pytest.raises(AssertionError):
        check_conditional(np.asarray(unclamped.position)[50:], OBS_A, assert_mc_close)

    def blind(p, x):  # sees the prior mean instead of the observed values
        return energy(p, jnp.where(jnp.asarray(OBS_A), p["mu"], x))

    _, draws, _ = run(umrf.samplers.mala(blind, step_size=0.2), x0)
    with pytest.raises(AssertionError):
        check_conditional(draws, OBS_A, assert_mc_close)


def test_clamped_chains_on_several_devices_match_one_device():
    """Sharded over 8 CPU devices: observed coordinates bitwise equal, free ones to rounding."""
    alg = umrf.samplers.mala(energy, step_size=0.2)
    x0 = start(64, [OBS_A, OBS_B])
    one, _, _ = run(alg, x0, num_steps=50, thin=1, burn=0)
    many, _, _ = run(alg, x0, num_steps=50, thin=1, burn=0, mesh=umrf.sharding.chains_mesh())
    obs = np.asarray(x0.observed)
    a, b = np.asarray(one.position.value), np.asarray(many.position.value)
    assert np.array_equal(a[obs], b[obs])
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_annealed_langevin_keeps_observed_coordinates_bitwise():
    def score(p, x, sigma):  # data N(μ, P⁻¹) blurred by σ: score of N(μ, P⁻¹ + σ² I)
        cov = jnp.linalg.inv(p["precision"]) + sigma**2 * jnp.eye(4)
        return -jnp.linalg.solve(cov, x - p["mu"])

    for denoise in (False, True):
        alg = umrf.samplers.annealed_langevin(
            score, sigmas=[1.0, 0.3, 0.1], steps_per_level=20, eps=0.01, denoise=denoise
        )
        x0 = start(16, [OBS_A, OBS_B])
        final, _ = umrf.sample_chains(alg, jax.random.key(3), PARAMS, x0, num_steps=2)
        obs = np.asarray(x0.observed)
        out = np.asarray(final.position.value)
        assert np.array_equal(out[obs], np.asarray(x0.value)[obs])
        assert np.all(out[~obs] != 0.0)  # free coordinates moved


def test_clamped_step_under_jit_and_vmap_matches_eager():
    alg = umrf.samplers.ula(energy, step_size=0.05)
    x = Clamped(jnp.asarray(VALUES, jnp.float32), jnp.asarray(OBS_A))
    key = jax.random.key(5)
    eager, _ = alg.step(key, alg.init(x, PARAMS), PARAMS)
    jitted, _ = jax.jit(alg.step)(key, jax.jit(alg.init)(x, PARAMS), PARAMS)
    batched = jax.vmap(lambda k, s: alg.step(k, s, PARAMS))(
        key[None], jax.tree_util.tree_map(lambda a: a[None], alg.init(x, PARAMS))
    )[0]
    for out in (jitted, jax.tree_util.tree_map(lambda a: a[0], batched)):
        np.testing.assert_allclose(out.position.value, eager.position.value, rtol=1e-6, atol=1e-6)
        assert np.array_equal(
            np.asarray(out.position.value)[OBS_A], VALUES[OBS_A].astype(np.float32)
        )
