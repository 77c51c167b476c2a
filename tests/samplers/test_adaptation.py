"""MALA warm-up: the frozen step size reaches the target acceptance on a hard target."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.samplers import _adaptation


def energy(m, x):
    return m.energy(x)


@pytest.fixture(scope="module")
def model():
    scales = jnp.geomspace(0.3, 3.0, 10)  # anisotropic 10-D Gaussian
    return umrf.models.Gaussian(jnp.zeros(10), jnp.diag(1.0 / scales**2))


@pytest.mark.parametrize("target", [0.574, 0.8])
def test_warmup_reaches_target_acceptance_and_freezes(model, target):
    x0 = model.sample(jax.random.key(0), (256,))
    res = umrf.samplers.mala_warmup(
        energy,
        jax.random.key(1),
        model,
        x0,
        num_steps=200,
        initial_step_size=1.0,
        target_acceptance=target,
    )
    assert res.acceptance_rate.shape == (200,) and res.step_sizes.shape == (200,)
    assert res.state.position.shape == (256, 10)
    # frozen step: fresh sampling hits the target acceptance
    alg = umrf.samplers.mala(energy, step_size=res.step_size)
    _, trace = umrf.sample_chains(alg, jax.random.key(2), model, res.state.position, num_steps=100)
    assert float(trace.info.acceptance_rate.mean()) == pytest.approx(target, abs=0.03)
    # the initial step (1.0) was far off: acceptance then was far from the target
    assert abs(float(res.acceptance_rate[0]) - target) > 0.2


def test_higher_target_gives_smaller_step(model):
    x0 = model.sample(jax.random.key(0), (256,))
    steps = [
        float(
            umrf.samplers.mala_warmup(
                energy,
                jax.random.key(1),
                model,
                x0,
                num_steps=200,
                initial_step_size=1.0,
                target_acceptance=t,
            ).step_size
        )
        for t in (0.3, 0.6, 0.9)
    ]
    assert steps[0] > steps[1] > steps[2]


def test_warmup_no_recompile_on_new_params_and_jit(model):
    chex.clear_trace_counter()
    calls = {"n": 0}

    def counted(m, x):
        calls["n"] += 1
        return m.energy(x)

    x0 = jnp.zeros((16, 10))
    umrf.samplers.mala_warmup(counted, jax.random.key(0), model, x0, num_steps=20)
    n = calls["n"]
    other = umrf.models.Gaussian(jnp.ones(10), 2.0 * model.precision)
    res = umrf.samplers.mala_warmup(counted, jax.random.key(5), other, x0 + 1.0, num_steps=20)
    assert calls["n"] == n
    inside = jax.jit(
        lambda k, x: umrf.samplers.mala_warmup(counted, k, other, x, num_steps=20).step_size
    )
    np.testing.assert_allclose(inside(jax.random.key(5), x0 + 1.0), res.step_size, rtol=1e-5)


def test_warmup_with_mesh_matches_single_device(model):
    x0 = model.sample(jax.random.key(0), (16,))
    a = umrf.samplers.mala_warmup(energy, jax.random.key(1), model, x0, num_steps=20)
    mesh = umrf.sharding.chains_mesh()
    b = umrf.samplers.mala_warmup(energy, jax.random.key(1), model, x0, num_steps=20, mesh=mesh)
    # the cross-chain mean acceptance is an all-reduce when sharded: equal up to float
    # rounding of the summation order (the per-chain updates are bitwise identical)
    np.testing.assert_allclose(a.step_size, b.step_size, rtol=1e-5)
    np.testing.assert_allclose(a.state.position, b.state.position, rtol=1e-4, atol=1e-5)


def test_warmup_bad_inputs(model):
    x0 = jnp.zeros((4, 10))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="initial_step_size"):
        umrf.samplers.mala_warmup(energy, key, model, x0, num_steps=10, initial_step_size=0.0)
    with pytest.raises(ValueError, match="target_acceptance"):
        umrf.samplers.mala_warmup(energy, key, model, x0, num_steps=10, target_acceptance=1.0)
    with pytest.raises(ValueError, match="target_acceptance"):
        umrf.samplers.mala_warmup(energy, key, model, x0, num_steps=10, target_acceptance=0.0)
    with pytest.raises(ValueError, match="num_steps"):
        umrf.samplers.mala_warmup(energy, key, model, x0, num_steps=0)
    with pytest.raises(ValueError, match="x0"):
        umrf.samplers.mala_warmup(energy, key, model, x0.at[0, 0].set(jnp.inf), num_steps=10)
    assert _adaptation.MALAWarmupResult._fields[0] == "step_size"
