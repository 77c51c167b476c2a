"""Parallel tempering: the exact 50/50 magnetisation split of a 4x4 ferromagnet at β = 0.8 from
an all-up start (plain Gibbs stays stuck), exact cold-chain marginals, the exchange rule,
independence across chains, devices, value equality, ladders and bad input."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf

BETA = 0.8
NUM_CHAINS = 64


def energy(model, x):
    return model.energy(x)


def exact_ising():
    """P(M > 0), P(M < 0) and P(s_i = s_j) on bonds by enumerating all 2^16 spin lattices."""
    s = np.asarray(list(itertools.product([-1, 1], repeat=16)), np.float64).reshape(-1, 4, 4)
    right, down = s * np.roll(s, -1, 2), s * np.roll(s, -1, 1)
    e = -BETA * (right.sum((1, 2)) + down.sum((1, 2)))
    p = np.exp(-(e - e.min()))
    p /= p.sum()
    m = s.sum((1, 2))
    bonds = np.concatenate([(right > 0).reshape(-1, 16), (down > 0).reshape(-1, 16)], 1)
    return p[m > 0].sum(), p[m < 0].sum(), bonds.T @ p


def model():
    return umrf.models.ising((4, 4), coupling=BETA)


def cold_stats(cold):
    """(sign of M, bond agreements) of cold-chain spin lattices (draws, chains, 4, 4)."""
    m = cold.sum((2, 3))
    sign = np.stack([m > 0, m < 0], -1)
    right, down = cold * np.roll(cold, -1, 3), cold * np.roll(cold, -1, 2)
    shape = cold.shape[:2] + (16,)
    bonds = np.concatenate([(right > 0).reshape(shape), (down > 0).reshape(shape)], -1)
    return sign, bonds


def gibbs_pt(m, num_temperatures=6):
    temps = umrf.samplers.geometric_temperatures(4.0, num_temperatures)
    make = functools.partial(umrf.samplers.tempered, umrf.samplers.gibbs(m), energy)
    return umrf.samplers.parallel_tempering(make, temperatures=temps)


@pytest.fixture(scope="module")
def pt_run():
    m = model()
    alg = gibbs_pt(m)
    x0 = jnp.ones((NUM_CHAINS, 6, 4, 4), jnp.int8)  # every replica all up
    final, trace = umrf.sample_chains(alg, jax.random.key(0), m, x0, num_steps=1500)
    return m, alg, final, trace


def test_pt_recovers_the_exact_sign_split_where_plain_gibbs_stays_stuck(pt_run, assert_mc_close):
    m, _, _, trace = pt_run
    p_up, p_down, _ = exact_ising()
    assert abs(p_up - 0.5) < 1e-4  # (a 50/50 split up to P(M = 0) ≈ 1e-5)
    assert not bool(trace.info.diverged.any())
    cold = np.asarray(trace.position[150:, :, 0])
    sign, _ = cold_stats(cold)
    assert_mc_close(sign, [p_up, p_down], what="PT: P(M > 0), P(M < 0)")
    # plain Gibbs from the same start: every chain stays on the up side
    x0 = jnp.ones((NUM_CHAINS, 4, 4), jnp.int8)
    _, plain = umrf.sample_chains(umrf.samplers.gibbs(m), jax.random.key(0), m, x0, num_steps=1500)
    stuck, _ = cold_stats(np.asarray(plain.position[150:]))
    assert stuck[..., 0].mean() > 0.99
    with pytest.raises(AssertionError):
        assert_mc_close(stuck, [p_up, p_down], what="plain Gibbs")


def test_the_cold_chain_marginals_are_exact(pt_run, assert_mc_close):
    _, _, _, trace = pt_run
    _, _, bonds_exact = exact_ising()
    cold = np.asarray(trace.position[150:, :, 0])
    _, bonds = cold_stats(cold)
    assert_mc_close(bonds, bonds_exact, what="PT cold chain: P(s_i = s_j)")
    assert_mc_close(cold.reshape(cold.shape[:2] + (16,)) > 0, np.full(16, 0.5), what="P(s_i = +1)")


def test_swap_bookkeeping_even_odd_schedule_and_rates(pt_run):
    _, _, final, trace = pt_run
    info = trace.info
    attempted = np.asarray(info.swap_attempted)
    assert np.all(attempted[0::2, :, 0::2]) and not np.any(attempted[0::2, :, 1::2])
    assert np.all(attempted[1::2, :, 1::2]) and not np.any(attempted[1::2, :, 0::2])
    assert not np.any(np.asarray(info.swap_accepted) & ~attempted)
    rates = np.asarray(umrf.samplers.swap_rates(info))
    assert rates.shape == (5,) and np.all((rates > 0.2) & (rates < 1.0)), rates
    ids = np.asarray(final.replica_ids)
    assert np.all(np.sort(ids, axis=1) == np.arange(6))
    e = np.asarray(jax.vmap(jax.vmap(model().energy))(final.position))
    np.testing.assert_allclose(np.asarray(final.energy), e, rtol=1e-6)


def test_pt_over_a_temperature_taking_sampler_gwg():
    """Replicas of GWG (a sampler with a `temperature` argument) also cross the barrier."""
    m = model()
    r = umrf.models.relaxation(m)
    temps = umrf.samplers.geometric_temperatures(4.0, 6)
    alg = umrf.samplers.parallel_tempering(
        functools.partial(umrf.samplers.gwg, r.energy_fn), temperatures=temps
    )
    x0 = jnp.ones((32, 6, 4, 4), jnp.int8)  # binary states: all up
    _, trace = umrf.sample_chains(alg, jax.random.key(1), m, x0, num_steps=3000)
    cold = 2 * np.asarray(trace.position[300:, :, 0], np.int32) - 1
    sign, _ = cold_stats(cold)
    frac = sign[..., 0].mean()
    assert 0.35 < frac < 0.65, frac  # PT(GWG) reaches both sides (GWG alone: frac = 1)
    assert not bool(trace.info.diverged.any())


def test_exchange_probability_is_the_metropolis_ratio():
    """With replica kernels that never move, only exchanges act: check the probability."""

    def frozen_init(x, params):
        return umrf.samplers.TemperedState(x, params.energy(x))

    def frozen_step(key, state, params, *, temperature):
        info = umrf.samplers.GibbsInfo(jnp.ones(()), jnp.zeros((), bool))
        return state, info

    def make(*, temperature):
        return umrf.samplers.SamplingAlgorithm(
            umrf.samplers.bind(frozen_init),
            umrf.samplers.bind(frozen_step, temperature=temperature),
        )

    m = model()
    alg = umrf.samplers.parallel_tempering(make, temperatures=(1.0, 2.0))
    up = jnp.ones((4, 4), jnp.int8)
    mixed = up.at[0, :].set(-1)  # higher energy
    state = alg.init(jnp.stack([mixed, up]), m)  # the cold replica holds the worse state
    e0, e1 = float(m.energy(mixed)), float(m.energy(up))
    want = min(1.0, np.exp((1.0 - 0.5) * (e0 - e1)))
    keys = jax.random.split(jax.random.key(0), 4000)
    new, info = jax.jit(jax.vmap(lambda k: alg.step(k, state, m)))(keys)
    assert np.allclose(np.asarray(info.swap_acceptance[:, 0]), want)
    swapped = (np.asarray(new.position[:, 0]) == np.asarray(up)).all(axis=(1, 2))
    np.testing.assert_array_equal(swapped, np.asarray(info.swap_accepted[:, 0]))
    assert abs(swapped.mean() - want) < 5 * np.sqrt(want * (1 - want) / 4000) + 1e-3


def test_chains_are_independent_and_eight_devices_give_the_same_states(pt_run):
    m, alg, _, _ = pt_run
    x0 = jnp.ones((8, 6, 4, 4), jnp.int8)
    a, _ = umrf.sample_chains(alg, jax.random.key(4), m, x0, num_steps=40)
    b, _ = umrf.sample_chains(alg, jax.random.key(4), m, x0.at[3].set(-1), num_steps=40)
    others = [c for c in range(8) if c != 3]
    np.testing.assert_array_equal(np.asarray(a.position)[others], np.asarray(b.position)[others])
    sharded, _ = umrf.sample_chains(
        alg, jax.random.key(4), m, x0, num_steps=40, mesh=umrf.sharding.chains_mesh()
    )
    np.testing.assert_array_equal(np.asarray(a.position), np.asarray(sharded.position))


def test_rebuilt_tempering_sampler_is_equal_and_does_not_recompile(pt_run, count_compiles):
    m, alg, _, _ = pt_run
    other = umrf.models.ising((4, 4), coupling=0.5)
    rebuilt = gibbs_pt(other)
    assert rebuilt == alg and hash(rebuilt) == hash(alg)
    assert gibbs_pt(other, num_temperatures=5) != alg
    x0 = jnp.ones((NUM_CHAINS, 6, 4, 4), jnp.int8)
    with count_compiles() as c:
        final, _ = umrf.sample_chains(rebuilt, jax.random.key(5), other, x0, num_steps=1500)
        jax.block_until_ready(final)
    assert c.compiles == 0 and c.traces == 0


def test_geometric_ladder_and_bad_input():
    temps = umrf.samplers.geometric_temperatures(10.0, 5, min_temperature=0.1)
    assert temps[0] == 0.1 and temps[-1] == 10.0
    np.testing.assert_allclose(np.diff(np.log(temps)), np.log(100.0) / 4, rtol=1e-12)
    with pytest.raises(ValueError, match="exceed"):
        umrf.samplers.geometric_temperatures(1.0, 3)
    with pytest.raises(ValueError, match=">= 2"):
        umrf.samplers.geometric_temperatures(3.0, 1)
    m = model()
    make = functools.partial(umrf.samplers.tempered, umrf.samplers.gibbs(m), energy)
    with pytest.raises(ValueError, match="increase"):
        umrf.samplers.parallel_tempering(make, temperatures=[1.0, 3.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        umrf.samplers.parallel_tempering(make, temperatures=[1.0])
    with pytest.raises(TypeError, match="SamplingAlgorithm"):
        umrf.samplers.parallel_tempering(lambda temperature: None, temperatures=[1.0, 2.0])
    alg = umrf.samplers.parallel_tempering(make, temperatures=[1.0, 2.0])
    with pytest.raises(ValueError, match="leading axis of size 2"):
        alg.init(jnp.ones((4, 4), jnp.int8), m)
    r = umrf.models.relaxation(m)
    no_energy = umrf.samplers.parallel_tempering(
        lambda temperature: umrf.samplers.gibbs(m), temperatures=[1.0, 2.0]
    )
    with pytest.raises(TypeError, match="energy_fn"):
        no_energy.init(jnp.ones((2, 4, 4), jnp.int8), m)
    with_energy = umrf.samplers.parallel_tempering(
        functools.partial(umrf.samplers.gwg, r.energy_fn),
        temperatures=[1.0, 2.0],
        energy_fn=r.energy_fn,
    )
    assert with_energy.init(jnp.ones((2, 4, 4), jnp.int8), m).energy.shape == (2,)
    with pytest.raises(TypeError, match="TemperingInfo"):
        umrf.samplers.swap_rates(None)
