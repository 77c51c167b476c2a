"""ESS and split R-hat against cases with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.samplers import effective_sample_size, split_rhat


def ar1(key, rho, n, chains, dims=()):
    """Stationary AR(1): x_t = rho x_{t-1} + sqrt(1 - rho²) e_t, x_0 ~ N(0, 1)."""
    k0, k1 = jax.random.split(key)
    x0 = jax.random.normal(k0, (chains, *dims))
    noise = jax.random.normal(k1, (n, chains, *dims)) * np.sqrt(1 - rho**2)

    def step(x, e):
        x = rho * x + e
        return x, x

    return jax.lax.scan(step, x0, noise)[1]  # (n, chains, *dims)


def test_iid_ess_is_about_n():
    draws = jax.random.normal(jax.random.key(0), (2000, 4, 3))
    ess = effective_sample_size(draws)
    assert ess.shape == (3,)
    np.testing.assert_allclose(ess, 8000, rtol=0.12)
    rhat = split_rhat(draws)
    assert rhat.shape == (3,) and float(jnp.max(jnp.abs(rhat - 1))) < 0.01


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_ar1_ess_matches_theory(rho):
    n, chains = 4000, 8
    draws = ar1(jax.random.key(1), rho, n, chains)
    expected = n * chains * (1 - rho) / (1 + rho)
    assert float(effective_sample_size(draws)) == pytest.approx(expected, rel=0.15)
    # Antithetic chains (rho < 0) are more efficient than iid: ESS > n.
    anti = ar1(jax.random.key(2), -0.5, n, chains)
    assert float(effective_sample_size(anti)) > 1.8 * n * chains


def test_rhat_flags_chains_with_different_means():
    draws = jax.random.normal(jax.random.key(3), (1000, 4))
    shifted = draws + jnp.array([0.0, 0.0, 0.0, 1.0])[None, :]
    assert float(split_rhat(shifted)) > 1.05  # theory: sqrt(1 + 0.214) ≈ 1.10
    assert float(split_rhat(shifted, rank_normalize=True)) > 1.05
    # a trend inside each chain is caught by the split (both halves differ)
    trend = draws + jnp.linspace(0.0, 3.0, 1000)[:, None]
    assert float(split_rhat(trend)) > 1.2
    # exact value on a tiny hand-computable case
    x = jnp.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0], [3.0, 4.0]])  # (n=4, m=2)
    halves = np.array([[0.0, 1.0], [2.0, 3.0], [1.0, 2.0], [3.0, 4.0]])
    means, w = halves.mean(1), halves.var(1, ddof=1).mean()
    var_plus = (2 - 1) / 2 * w + means.var(ddof=1)
    np.testing.assert_allclose(split_rhat(x), np.sqrt(var_plus / w), rtol=1e-6)


def test_diagnostics_on_a_sampler_trace_under_jit():
    alg = umrf.samplers.mala(lambda p, x: 0.5 * jnp.sum(x**2), step_size=1.0)
    x0 = jax.random.normal(jax.random.key(0), (8, 2))
    _, trace = umrf.sample_chains(alg, jax.random.key(1), None, x0, num_steps=400)
    ess = jax.jit(effective_sample_size)(trace.position)
    rhat = jax.jit(split_rhat)(trace.position)
    assert ess.shape == (2,) and bool(jnp.all(ess > 300)) and bool(jnp.all(ess < 8 * 400 * 1.5))
    assert float(jnp.max(rhat)) < 1.05
    # chain-major layout via the axis arguments
    swapped = jnp.swapaxes(trace.position, 0, 1)
    np.testing.assert_allclose(
        effective_sample_size(swapped, sample_axis=1, chain_axis=0), ess, rtol=1e-5
    )


def test_diagnostics_bad_inputs():
    with pytest.raises(ValueError, match="chain axis"):
        effective_sample_size(jnp.ones(10))
    with pytest.raises(ValueError, match="at least 4"):
        split_rhat(jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="differ"):
        split_rhat(jnp.ones((10, 2)), sample_axis=1, chain_axis=1)
