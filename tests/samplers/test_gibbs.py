"""Chromatic block Gibbs on DiscreteMRFs: exactness against exact inference, evidence, errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.models import DiscreteMRF, Factor

NUM_CHAINS = 64


def random_start(key, cards, num_chains=NUM_CHAINS):
    maxval = jnp.broadcast_to(jnp.asarray(cards), (num_chains, len(cards)))
    return jax.random.randint(key, (num_chains, len(cards)), 0, maxval)


def run(alg, mrf, key, num_steps, x0=None):
    if x0 is None:
        x0 = random_start(jax.random.fold_in(key, 1), mrf.cardinalities)
    final, trace = umrf.sample_chains(alg, key, mrf, x0, num_steps=num_steps)
    assert not bool(jnp.any(trace.info.diverged))
    burn = num_steps // 10
    return final, np.asarray(trace.position[burn:])


def ising_mrf(beta, field=0.1):
    return umrf.models.ising((4, 4), coupling=beta, field=field).to_discrete_mrf()


@pytest.fixture(scope="module")
def ising_alg():
    return umrf.samplers.gibbs(ising_mrf(0.3))


@pytest.mark.parametrize("beta", [0.2, 0.4407, 0.6])
def test_ising_4x4_marginals_and_pairs_match_exact(ising_alg, beta, assert_mc_close):
    mrf = ising_mrf(beta)  # same structure: the compiled sampler is reused
    exact = umrf.inference.marginals(mrf)
    _, pos = run(ising_alg, mrf, jax.random.key(10), 1500)
    p1 = np.asarray([v[1] for v in exact.variables])
    assert_mc_close(pos == 1, p1, what="P(x_i = 1)")
    pairs = [(k, f.scope) for k, f in enumerate(mrf.factors) if len(f.scope) == 2]
    same = np.stack([pos[..., i] == pos[..., j] for _, (i, j) in pairs], axis=-1)
    p_same = np.asarray([float(exact.factors[k][0, 0] + exact.factors[k][1, 1]) for k, _ in pairs])
    assert_mc_close(same, p_same, what="P(x_i = x_j) on bonds")


def test_potts_3x3_three_states_matches_exact(assert_mc_close):
    model = umrf.models.potts(
        (3, 3), 3, coupling=0.8, field=jnp.array([0.3, 0.0, -0.2]), periodic=False
    )
    mrf = model.to_discrete_mrf()
    exact = umrf.inference.marginals(mrf)
    alg = umrf.samplers.gibbs(mrf)
    _, pos = run(alg, mrf, jax.random.key(11), 1500)
    onehot = pos[..., None] == np.arange(3)
    assert_mc_close(onehot, np.stack([np.asarray(v) for v in exact.variables]), what="Potts")
    k = next(k for k, f in enumerate(mrf.factors) if f.scope == (0, 1))
    joint = (pos[..., 0, None, None] == np.arange(3)[:, None]) & (
        pos[..., 1, None, None] == np.arange(3)[None, :]
    )
    assert_mc_close(joint, np.asarray(exact.factors[k]), what="Potts pair table")


def random_factor_graph(seed=0):
    """Loopy graph with a 3-way factor, mixed cardinalities and a hard zero."""
    rng = np.random.default_rng(seed)
    cards = [2, 3, 2, 2, 3]
    scopes = [(0, 1, 2), (2, 3), (3, 4), (4, 0), (1, 3), (0,), (4,)]
    factors = []
    for s in scopes:
        t = rng.normal(scale=0.8, size=tuple(cards[v] for v in s))
        factors.append(Factor(s, t))
    table = np.asarray(factors[1].log_potential).copy()
    table[1, 1] = -np.inf  # a hard constraint
    factors[1] = Factor((2, 3), table)
    return DiscreteMRF(cards, factors)


def test_random_factor_graph_with_three_way_factor(assert_mc_close):
    mrf = random_factor_graph()
    exact = umrf.inference.marginals(mrf)
    alg = umrf.samplers.gibbs(mrf)
    x0 = jnp.zeros((NUM_CHAINS, 5), jnp.int32)  # a positive-probability start
    _, pos = run(alg, mrf, jax.random.key(12), 1500, x0=x0)
    for i, k in enumerate(mrf.cardinalities):
        assert_mc_close(pos[..., i, None] == np.arange(k), exact.variables[i], what=f"var {i}")
    triple = (
        (pos[..., 0, None, None, None] == np.arange(2)[:, None, None])
        & (pos[..., 1, None, None, None] == np.arange(3)[None, :, None])
        & (pos[..., 2, None, None, None] == np.arange(2)[None, None, :])
    )
    assert_mc_close(triple, exact.factors[0], what="3-way factor marginal")
    assert not np.any((pos[..., 2] == 1) & (pos[..., 3] == 1)), "hard zero visited"


def test_evidence_is_clamped_and_conditional_is_exact(assert_mc_close):
    mrf = random_factor_graph(1)
    alg = umrf.samplers.gibbs(mrf, evidence={1: 2, 4: 0})
    # exact conditional: add hard unary constraints for the evidence
    cond = DiscreteMRF(
        mrf.cardinalities,
        list(mrf.factors)
        + [
            Factor((1,), jnp.array([-jnp.inf, -jnp.inf, 0.0])),
            Factor((4,), jnp.array([0.0, -jnp.inf, -jnp.inf])),
        ],
    )
    exact = umrf.inference.marginals(cond)
    x0 = jnp.zeros((NUM_CHAINS, 5), jnp.int32)
    final, pos = run(alg, mrf, jax.random.key(13), 1000, x0=x0)
    assert np.all(pos[..., 1] == 2) and np.all(pos[..., 4] == 0)
    for i in (0, 2, 3):
        assert_mc_close(pos[..., i, None] == np.arange(mrf.cardinalities[i]), exact.variables[i])


def test_state_energy_and_diverged_flag():
    mrf = random_factor_graph()
    alg = umrf.samplers.gibbs(mrf)
    state = alg.init(jnp.zeros(5, jnp.int32), mrf)
    state, info = jax.jit(alg.step)(jax.random.key(0), state, mrf)
    np.testing.assert_allclose(state.energy, mrf.energy(state.position), rtol=1e-6)
    assert float(info.acceptance_rate) == 1.0 and not bool(info.diverged)
    # an MRF with no configuration of positive probability: every sweep is flagged
    dead = DiscreteMRF([2, 2], [Factor((0, 1), jnp.full((2, 2), -jnp.inf))])
    alg2 = umrf.samplers.gibbs(dead)
    st = alg2.init(jnp.zeros(2, jnp.int32), dead)
    st, info = alg2.step(jax.random.key(1), st, dead)
    assert bool(info.diverged)


def test_no_recompile_on_new_params_and_batching():
    mrf = ising_mrf(0.3)
    alg = umrf.samplers.gibbs(mrf)

    @chex.assert_max_traces(n=1)
    def sweep(key, state, params):
        return alg.step(key, state, params)

    sweep = jax.jit(sweep)

    state = alg.init(jnp.zeros(16, jnp.int32), mrf)
    for beta in (0.1, 0.5, 0.9):
        state, _ = sweep(jax.random.key(0), state, ising_mrf(beta))
    keys = jax.random.split(jax.random.key(1), 8)
    states = jax.vmap(alg.init, in_axes=(0, None))(jnp.zeros((8, 16), jnp.int32), mrf)
    new, info = jax.vmap(alg.step, in_axes=(0, 0, None))(keys, states, mrf)
    assert new.position.shape == (8, 16) and info.diverged.shape == (8,)
    # different keys give different chains
    assert len({tuple(np.asarray(p)) for p in new.position}) > 1


def test_bad_input_raises():
    mrf = random_factor_graph()
    with pytest.raises(TypeError, match="mrf_or_model"):
        umrf.samplers.gibbs("not a model")
    with pytest.raises(ValueError, match="outside its states"):
        umrf.samplers.gibbs(mrf, evidence={1: 3})
    with pytest.raises(ValueError, match="variables are ints"):
        umrf.samplers.gibbs(mrf, evidence={7: 0})
    with pytest.raises(TypeError, match="mapping"):
        umrf.samplers.gibbs(mrf, evidence=[(1, 0)])
    alg = umrf.samplers.gibbs(mrf)
    with pytest.raises(ValueError, match="shape"):
        alg.init(jnp.zeros(4, jnp.int32), mrf)
    with pytest.raises(ValueError, match="outside the states"):
        alg.init(jnp.array([0, 3, 0, 0, 0]), mrf)
    with pytest.raises(TypeError, match="int array"):
        alg.init(jnp.zeros(5), mrf)
    state = alg.init(jnp.zeros(5, jnp.int32), mrf)
    with pytest.raises(ValueError, match="different structure"):
        alg.step(jax.random.key(0), state, ising_mrf(0.1))
