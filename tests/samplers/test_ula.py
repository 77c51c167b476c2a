"""ULA: the discretisation bias of the stationary law, jit/vmap, divergence, bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.samplers import _ula


def quadratic(s2, x):
    """E(x) = x²/(2 s²): N(0, s²) at T = 1, params = s²."""
    return 0.5 * jnp.sum(x**2) / s2


def stationary_var(alg, s2, key, burn=50, steps=400, chains=2048):
    x0 = jnp.zeros((chains, 1))
    _, trace = umrf.sample_chains(alg, key, jnp.float32(s2), x0, num_steps=steps)
    assert not bool(trace.info.diverged.any())
    return float(jnp.mean(trace.position[burn:] ** 2))


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_ula_stationary_variance_has_the_known_bias(temperature):
    # x' = (1 - τ/(T s²)) x + sqrt(2τ) ε has variance T s² / (1 - τ / (2 T s²)).
    s2, tau = 2.25, 0.9 * temperature
    alg = umrf.samplers.ula(quadratic, step_size=tau, temperature=temperature)
    var = stationary_var(alg, s2, jax.random.key(0))
    expected = temperature * s2 / (1.0 - tau / (2.0 * temperature * s2))
    assert expected / (temperature * s2) == pytest.approx(1.25)  # 25 % bias, far above the tol
    assert var == pytest.approx(expected, rel=0.03)


def test_ula_step_formula_exact():
    # One step equals x - τ ∇E/T + sqrt(2τ) ε with ε the normal draw from the step key.
    energy = lambda p, x: jnp.sum(p * x**4)  # noqa: E731
    alg = umrf.samplers.ula(energy, step_size=0.01, temperature=0.5)
    x = jnp.array([0.3, -1.2, 2.0])
    p = jnp.array([1.0, 2.0, 0.5])
    key = jax.random.key(3)
    state, info = alg.step(key, alg.init(x, p), p)
    eps = jax.random.normal(key, (3,))
    expected = x - 0.01 * (4 * p * x**3) / 0.5 + jnp.sqrt(0.02) * eps
    np.testing.assert_allclose(state.position, expected, rtol=1e-6)
    np.testing.assert_allclose(state.energy, energy(p, expected), rtol=1e-6)
    np.testing.assert_allclose(state.energy_grad, 4 * p * expected**3, rtol=1e-5)
    assert float(info.acceptance_rate) == 1.0 and not bool(info.diverged)


def test_ula_jit_vmap_and_no_recompile_on_new_params():
    alg = umrf.samplers.ula(quadratic, step_size=0.1)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(key, x, s2):
        keys = jax.random.split(key, x.shape[0])
        states = jax.vmap(alg.init, in_axes=(0, None))(x, s2)
        return jax.vmap(alg.step, in_axes=(0, 0, None))(keys, states, s2)

    x = jnp.ones((5, 2))
    s1, i1 = run(jax.random.key(0), x, 1.0)
    s2, _ = run(jax.random.key(0), x, 4.0)  # new params: same program
    assert s1.position.shape == (5, 2) and i1.diverged.shape == (5,)
    # vmapped result equals the per-chain eager result
    keys = jax.random.split(jax.random.key(0), 5)
    one, _ = alg.step(keys[2], alg.init(x[2], 1.0), 1.0)
    np.testing.assert_allclose(s1.position[2], one.position, rtol=1e-6)
    assert not np.allclose(s1.position, s2.position)


def test_ula_pytree_position():
    energy = lambda p, x: 0.5 * (jnp.sum(x["a"] ** 2) + x["b"] ** 2)  # noqa: E731
    alg = umrf.samplers.ula(energy, step_size=0.1)
    state = alg.init({"a": jnp.ones(3), "b": jnp.float32(2.0)}, None)
    state, info = jax.jit(alg.step)(jax.random.key(0), state, None)
    assert state.position["a"].shape == (3,) and state.position["b"].shape == ()
    assert not bool(info.diverged)


def test_ula_flags_divergence_and_keeps_the_nonfinite_state():
    # Step 3 on E = x²/2: x' = -2x + noise, which overflows float32 in ~130 steps.
    alg = umrf.samplers.ula(quadratic, step_size=3.0)
    final, trace = umrf.sample_chains(alg, jax.random.key(0), 1.0, jnp.ones((4, 2)), num_steps=300)
    diverged = np.asarray(trace.info.diverged)
    assert not diverged[:10].any() and diverged[-1].all()
    assert not np.isfinite(np.asarray(final.position)).all()  # not replaced


def test_ula_bad_inputs():
    with pytest.raises(ValueError, match="step_size"):
        umrf.samplers.ula(quadratic, step_size=0.0)
    with pytest.raises(ValueError, match="step_size"):
        umrf.samplers.ula(quadratic, step_size=-0.1)
    with pytest.raises(ValueError, match="step_size"):
        umrf.samplers.ula(quadratic, step_size=float("nan"))
    with pytest.raises(ValueError, match="temperature"):
        umrf.samplers.ula(quadratic, step_size=0.1, temperature=0.0)
    with pytest.raises(ValueError, match="scalar"):
        umrf.samplers.ula(quadratic, step_size=jnp.array([0.1, 0.2]))
    with pytest.raises(TypeError, match="energy_fn"):
        umrf.samplers.ula("not a function", step_size=0.1)
    alg = umrf.samplers.ula(quadratic, step_size=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        alg.init(jnp.array([1, 2]), 1.0)
    batch_energy = lambda p, x: 0.5 * x**2  # noqa: E731  (forgot the sum: not a scalar)
    with pytest.raises(ValueError, match="scalar"):
        umrf.samplers.ula(batch_energy, step_size=0.1).init(jnp.ones(3), None)


def test_ula_algorithms_compare_by_value():
    a = umrf.samplers.ula(quadratic, step_size=0.1)
    assert a == umrf.samplers.ula(quadratic, step_size=0.1)
    b = umrf.samplers.ula(quadratic, step_size=jnp.float32(0.25))  # a concrete array step size
    assert b == umrf.samplers.ula(quadratic, step_size=0.25) and hash(b) == hash(
        umrf.samplers.ula(quadratic, step_size=0.25)
    )
    assert a != umrf.samplers.ula(quadratic, step_size=0.2)
    kernel = _ula.build_kernel(quadratic)
    s, _ = kernel(jax.random.key(0), _ula.init(jnp.ones(2), 1.0, quadratic), 1.0, 0.1)
    s2, _ = a.step(jax.random.key(0), a.init(jnp.ones(2), 1.0), 1.0)
    np.testing.assert_allclose(s.position, s2.position)
