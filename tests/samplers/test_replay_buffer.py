"""Replay buffer and CD/PCD/replay negatives: exact read/write semantics, statistics, jit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.samplers import (
    ReplayBuffer,
    cd_negatives,
    pcd_negatives,
    replay_negatives,
    run_chains,
    uniform_init,
)


def far_init(key, n):
    """A reinitialisation distribution easy to tell apart from the stored content."""
    return jax.random.uniform(key, (n, 2), minval=10.0, maxval=11.0)


def test_init_sample_update_push_semantics():
    buf = ReplayBuffer(8, uniform_init((2,)), reinit_prob=0.0)
    content = jnp.arange(16.0).reshape(8, 2)
    state = buf.init(jax.random.key(0), content)
    x, idx = buf.sample(jax.random.key(1), state, batch_size=5)
    assert x.shape == (5, 2) and idx.shape == (5,) and idx.dtype == jnp.int32
    np.testing.assert_array_equal(x, content[idx])  # reads are the stored rows
    state2 = buf.update(state, idx, -x)
    expected = np.asarray(content).copy()
    expected[np.asarray(idx)] = -np.asarray(x)
    np.testing.assert_array_equal(state2.samples, expected)  # written back at the same slots
    # push: ring buffer from the cursor, wrapping around
    s = buf.push(state, jnp.full((6, 2), -1.0))
    assert int(s.cursor) == 6
    s = buf.push(s, jnp.full((3, 2), -2.0))
    assert int(s.cursor) == 1
    np.testing.assert_array_equal(s.samples[:, 0], [-2, -1, -1, -1, -1, -1, -2, -2])


def test_default_init_and_reinitialisation_probability():
    buf = ReplayBuffer(100, uniform_init((2,), low=-1.0, high=1.0), reinit_prob=0.0)
    state = buf.init(jax.random.key(0))
    assert state.samples.shape == (100, 2)
    assert float(jnp.min(state.samples)) >= -1.0 and float(jnp.max(state.samples)) <= 1.0

    always = ReplayBuffer(100, far_init, reinit_prob=1.0)
    x, _ = always.sample(jax.random.key(1), state, batch_size=50)
    assert float(jnp.min(x)) >= 10.0  # every entry is a fresh draw

    p = 0.05
    buf = ReplayBuffer(100, far_init, reinit_prob=p)
    sample = jax.jit(buf.sample, static_argnames="batch_size")
    x, _ = sample(jax.random.key(2), state, batch_size=40000)
    frac = float(jnp.mean(x[:, 0] >= 10.0))
    assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / 40000)


def test_pytree_buffer():
    def init(key, n):
        return {"a": jnp.zeros((n, 3)), "b": jnp.ones((n,), jnp.int32)}

    buf = ReplayBuffer(4, init, reinit_prob=0.5)
    state = buf.init(jax.random.key(0))
    x, idx = buf.sample(jax.random.key(1), state, batch_size=3)
    assert x["a"].shape == (3, 3) and x["b"].shape == (3,)
    state = buf.update(state, idx, {"a": x["a"] + 1, "b": x["b"] + 1})
    assert state.samples["b"].dtype == jnp.int32


def test_negatives_under_jit_without_recompile():
    def energy(p, x):
        return 0.5 * p * jnp.sum(x**2)

    alg = umrf.samplers.ula(energy, step_size=0.05)
    buf = ReplayBuffer(64, uniform_init((2,)), reinit_prob=0.05)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, bstate, p):
        return replay_negatives(alg, buf, key, p, bstate, batch_size=16, num_steps=5)

    bstate = buf.init(jax.random.key(0))
    x, b1, info = step(jax.random.key(1), bstate, 1.0)
    x2, b2, _ = step(jax.random.key(2), b1, 2.0)  # new params, same program
    assert x.shape == (16, 2) and float(info.acceptance_rate) == 1.0
    assert int(info.num_diverged) == 0
    # the refined negatives were written back to the slots they were read from
    # (slots read twice keep one of the two writes)
    _, idx = buf.sample(jax.random.split(jax.random.key(1))[0], bstate, batch_size=16)
    idx = np.asarray(idx)
    stored = np.asarray(b1.samples)
    for j, i in enumerate(idx):
        if np.sum(idx == i) == 1:
            np.testing.assert_array_equal(stored[i], np.asarray(x)[j])
    untouched = np.setdiff1d(np.arange(64), idx)
    np.testing.assert_array_equal(stored[untouched], np.asarray(bstate.samples)[untouched])
    assert not np.array_equal(np.asarray(b1.samples), np.asarray(bstate.samples))


def test_cd_starts_at_data_and_pcd_continues_chains():
    def energy(p, x):
        return 0.5 * jnp.sum((x - p) ** 2)

    alg = umrf.samplers.ula(energy, step_size=1e-4)
    data = jnp.array([[5.0, 5.0], [-5.0, 3.0]])
    x, _ = cd_negatives(alg, jax.random.key(0), jnp.zeros(2), data, num_steps=1)
    # one tiny step: stays next to its data point
    np.testing.assert_allclose(x, data, atol=0.05)
    # zero steps returns the start exactly
    x0, _ = run_chains(alg, jax.random.key(0), jnp.zeros(2), data, num_steps=0)
    np.testing.assert_array_equal(x0, data)
    # PCD: two calls of k steps == one run of 2k steps with the chained keys
    alg = umrf.samplers.ula(energy, step_size=0.1)
    k1, k2 = jax.random.split(jax.random.key(3))
    a, _ = pcd_negatives(alg, k1, jnp.zeros(2), data, num_steps=3)
    b, _ = pcd_negatives(alg, k2, jnp.zeros(2), a, num_steps=3)
    assert not np.allclose(a, b)


def test_persistent_chains_sample_the_model():
    # MALA chains continued across calls reach N(m, I): moments within MC error.
    m = jnp.array([1.0, -2.0])

    def energy(p, x):
        return 0.5 * jnp.sum((x - p) ** 2)

    alg = umrf.samplers.mala(energy, step_size=0.5)
    chains = jnp.zeros((2000, 2))
    f = jax.jit(lambda k, c: pcd_negatives(alg, k, m, c, num_steps=20))
    for i in range(3):
        chains, info = f(jax.random.key(i), chains)
    np.testing.assert_allclose(jnp.mean(chains, 0), m, atol=0.1)
    np.testing.assert_allclose(jnp.var(chains, 0), 1.0, atol=0.1)
    assert 0.5 < float(info.acceptance_rate) <= 1.0


def test_divergence_is_counted():
    def energy(p, x):
        return -p * jnp.sum(x**4)  # unbounded below: ULA blows up

    alg = umrf.samplers.ula(energy, step_size=0.5)
    x, info = cd_negatives(alg, jax.random.key(0), 1.0, jnp.full((4, 2), 3.0), num_steps=20)
    assert int(info.num_diverged) == 4
    assert not np.all(np.isfinite(np.asarray(x)))  # reported, not replaced


def test_bad_inputs():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, far_init)
    with pytest.raises(TypeError, match="capacity"):
        ReplayBuffer(10.0, far_init)
    with pytest.raises(ValueError, match="reinit_prob"):
        ReplayBuffer(10, far_init, reinit_prob=1.5)
    with pytest.raises(TypeError, match="init_fn"):
        ReplayBuffer(10, "uniform")
    buf = ReplayBuffer(10, far_init)
    with pytest.raises(ValueError, match="capacity"):
        buf.init(jax.random.key(0), jnp.zeros((5, 2)))
    with pytest.raises(ValueError, match="batch_size"):
        buf.sample(jax.random.key(0), buf.init(jax.random.key(0)), batch_size=0)
    with pytest.raises(ValueError, match="high"):
        uniform_init((2,), low=1.0, high=-1.0)
    alg = umrf.samplers.ula(lambda p, x: jnp.sum(x**2), step_size=0.1)
    with pytest.raises(ValueError, match="num_steps"):
        cd_negatives(alg, jax.random.key(0), None, jnp.zeros((2, 2)), num_steps=0)
    with pytest.raises(TypeError, match="SamplingAlgorithm"):
        cd_negatives(lambda x: x, jax.random.key(0), None, jnp.zeros((2, 2)), num_steps=1)
    with pytest.raises(TypeError, match="ReplayBuffer"):
        replay_negatives(alg, None, jax.random.key(0), None, None, batch_size=2, num_steps=1)
