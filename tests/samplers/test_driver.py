"""sample_chains: key derivation, thinning, program reuse, progress chunks, int/pytree states."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.samplers import _driver

CALLS = {"n": 0}


def counted_energy(p, x):
    CALLS["n"] += 1  # Python side effect: runs once per trace, never per step
    return 0.5 * jnp.sum((x - p["mu"]) ** 2) / p["s2"]


def params(mu=0.0, s2=1.0):
    return {"mu": jnp.float32(mu), "s2": jnp.float32(s2)}


def test_trace_shapes_thinning_and_manual_loop_equivalence():
    alg = umrf.samplers.mala(counted_energy, step_size=0.4)
    key, x0, p = jax.random.key(0), jnp.linspace(-1, 1, 12).reshape(6, 2), params(0.5)
    final, trace = umrf.sample_chains(alg, key, p, x0, num_steps=11, thin=3)
    assert trace.position.shape == (3, 6, 2)
    assert trace.info.acceptance_rate.shape == (3, 6) and trace.info.diverged.dtype == bool
    assert final.position.shape == (6, 2)
    # the documented keys: chain c at step t uses fold_in(split(key, C)[c], t)
    chain_keys = jax.random.split(key, 6)
    state = jax.vmap(alg.init, in_axes=(0, None))(x0, p)
    recorded = []
    for t in range(11):
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(chain_keys, t)
        state, _ = jax.vmap(alg.step, in_axes=(0, 0, None))(keys, state, p)
        if (t + 1) % 3 == 0:
            recorded.append(state.position)
    np.testing.assert_allclose(trace.position, jnp.stack(recorded), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final.position, state.position, rtol=1e-5, atol=1e-6)


def test_program_is_reused_across_calls_and_rebuilt_algorithms():
    _driver._clear_cache()
    x0 = jnp.zeros((8, 3))
    alg = umrf.samplers.ula(counted_energy, step_size=0.1)
    umrf.sample_chains(alg, jax.random.key(0), params(), x0, num_steps=20)
    traced = CALLS["n"]
    assert traced > 0
    # a training loop: new params, new key, new x0 values, even a rebuilt sampler
    for i in range(3):
        alg_i = umrf.samplers.ula(counted_energy, step_size=0.1)
        x_i = jax.random.normal(jax.random.key(i), (8, 3))
        umrf.sample_chains(
            alg_i, jax.random.key(i + 1), params(float(i), 1.0 + i), x_i, num_steps=20
        )
    assert CALLS["n"] == traced  # no retrace, no recompile
    # a different step size or number of steps is a new program
    umrf.sample_chains(
        umrf.samplers.ula(counted_energy, step_size=0.2),
        jax.random.key(0),
        params(),
        x0,
        num_steps=20,
    )
    assert CALLS["n"] > traced


def test_progress_chunks_give_the_same_result():
    alg = umrf.samplers.mala(counted_energy, step_size=0.4)
    x0 = jnp.zeros((4, 2))
    a = umrf.sample_chains(alg, jax.random.key(7), params(), x0, num_steps=24, thin=2)
    b = umrf.sample_chains(alg, jax.random.key(7), params(), x0, num_steps=24, thin=2, progress=4)
    # Different compiled programs (chunks vs one scan): floats agree to rounding, flags exactly.
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        u, v = np.asarray(u), np.asarray(v)
        if np.issubdtype(u.dtype, np.floating):
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(u, v)


class WalkState(NamedTuple):
    position: jax.Array


class WalkInfo(NamedTuple):
    acceptance_rate: jax.Array
    diverged: jax.Array


def test_integer_positions_run_under_the_driver():
    # A discrete ±1 random walk on {0..K-1} (stands in for Gibbs): int positions must work.
    def init(x, p):
        return WalkState(x)

    def step(key, state, p):
        move = jax.random.choice(key, jnp.array([-1, 1]))
        x = jnp.clip(state.position + move, 0, p - 1)
        return WalkState(x), WalkInfo(jnp.float32(1.0), jnp.array(False))

    alg = umrf.samplers.SamplingAlgorithm(init, step)
    x0 = jnp.zeros((16, 3), jnp.int32)
    final, trace = umrf.sample_chains(alg, jax.random.key(0), 5, x0, num_steps=50, thin=5)
    assert final.position.dtype == jnp.int32 and trace.position.shape == (10, 16, 3)
    assert int(trace.position.min()) >= 0 and int(trace.position.max()) <= 4


def test_pytree_positions_and_call_inside_jit():
    energy = lambda p, x: 0.5 * (jnp.sum(x["a"] ** 2) + jnp.sum(x["b"] ** 2))  # noqa: E731
    alg = umrf.samplers.ula(energy, step_size=0.05)
    x0 = {"a": jnp.zeros((5, 2)), "b": jnp.ones((5,))}
    final, trace = umrf.sample_chains(alg, jax.random.key(0), None, x0, num_steps=4)
    assert trace.position["a"].shape == (4, 5, 2) and trace.position["b"].shape == (4, 5)

    @jax.jit
    def inside(key, x):
        return umrf.sample_chains(alg, key, None, x, num_steps=4)[0].position

    np.testing.assert_allclose(inside(jax.random.key(0), x0)["a"], final.position["a"], rtol=1e-6)


def test_driver_bad_inputs():
    alg = umrf.samplers.ula(counted_energy, step_size=0.1)
    key, x0, p = jax.random.key(0), jnp.zeros((4, 2)), params()
    with pytest.raises(TypeError, match="alg"):
        umrf.sample_chains(lambda x: x, key, p, x0, num_steps=10)
    with pytest.raises(TypeError, match="key"):
        umrf.sample_chains(alg, 0, p, x0, num_steps=10)
    with pytest.raises(ValueError, match="key"):
        umrf.sample_chains(alg, jax.random.split(key, 2), p, x0, num_steps=10)
    with pytest.raises(ValueError, match="x0"):
        umrf.sample_chains(alg, key, p, x0.at[1, 0].set(jnp.nan), num_steps=10)
    with pytest.raises(ValueError, match="leading"):
        umrf.sample_chains(
            alg, key, p, {"a": jnp.zeros((4, 2)), "b": jnp.zeros((3,))}, num_steps=10
        )
    with pytest.raises(ValueError, match="chain axis"):
        umrf.sample_chains(alg, key, p, jnp.float32(0.0), num_steps=10)
    with pytest.raises(ValueError, match="num_steps"):
        umrf.sample_chains(alg, key, p, x0, num_steps=0)
    with pytest.raises(TypeError, match="num_steps"):
        umrf.sample_chains(alg, key, p, x0, num_steps=10.0)
    with pytest.raises(ValueError, match="thin"):
        umrf.sample_chains(alg, key, p, x0, num_steps=10, thin=11)
    with pytest.raises(ValueError, match="thin"):
        umrf.sample_chains(alg, key, p, x0, num_steps=10, thin=0)
    mesh = umrf.sharding.chains_mesh()
    with pytest.raises(ValueError, match="multiple"):
        umrf.sample_chains(alg, key, p, jnp.zeros((6, 2)), num_steps=10, mesh=mesh)
    with pytest.raises(TypeError, match="mesh"):
        umrf.sample_chains(alg, key, p, x0, num_steps=10, mesh="cpu")
