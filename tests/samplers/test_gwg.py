"""Gibbs-with-Gradients and DMALA: exact marginals on Ising, Potts, a loopy MRF with a hard zero,
an RBM's free energy and a neural energy on one-hot inputs; value equality, devices, bad input.

DULA/DMALA-specific checks (DMALA at another step size, DULA's bias and how the same check
catches it, the RBM energy-ignoring sampler for DMALA) are in test_dlp.py.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import umrf
from umrf.models import DiscreteMRF, Factor

NUM_CHAINS = 64


def samplers(relaxed):
    """The two exact gradient samplers on one relaxation (built fresh: value-equal)."""
    return {
        "gwg": umrf.samplers.gwg(relaxed.energy_fn, num_categories=relaxed.num_categories),
        "dmala": umrf.samplers.dmala(
            relaxed.energy_fn, step_size=0.5, num_categories=relaxed.num_categories
        ),
    }


STEPS = {"gwg": 4000, "dmala": 2000}


def run(alg, params, x0, num_steps, key=0):
    _, trace = umrf.sample_chains(alg, jax.random.key(key), params, x0, num_steps=num_steps)
    assert not bool(trace.info.diverged.any())
    pos = np.asarray(trace.position)
    return pos[len(pos) // 5 :], trace


def exact_check(states, mrf, assert_mc_close, what):
    """Compare single and factor marginals of flat states (draws, chains, n) with exact inference.

    Entries of exact probability 0 (hard zeros) must never be visited; the others are checked
    with the ESS-based tolerance of ``assert_mc_close``.
    """
    exact = umrf.inference.marginals(mrf)
    singles, want = [], []
    for i, k_i in enumerate(mrf.cardinalities):
        for k in range(1 if k_i == 2 else 0, k_i):
            singles.append(states[..., i] == k)
            want.append(float(exact.variables[i][k]))
    assert_mc_close(np.stack(singles, -1), np.asarray(want), what=f"{what}: P(x_i = k)")
    tables, want = [], []
    for f, table in zip(mrf.factors, exact.factors, strict=True):
        if len(f.scope) < 2:
            continue
        table = np.asarray(table)
        for cell in itertools.product(*[range(s) for s in table.shape]):
            hit = np.all([states[..., v] == c for v, c in zip(f.scope, cell, strict=True)], 0)
            if table[cell] == 0.0:
                assert not hit.any(), f"{what}: visited the hard zero {f.scope}={cell}"
                continue
            tables.append(hit)
            want.append(float(table[cell]))
    assert_mc_close(np.stack(tables, -1), np.asarray(want), what=f"{what}: factor marginals")


# --------------------------------------------------------------------------- targets


def ising_model(beta):
    return umrf.models.ising((4, 4), coupling=beta, field=0.1)


def random_start(shape, cards, key=1):
    maxval = jnp.broadcast_to(jnp.asarray(cards), shape)
    return jax.random.randint(jax.random.key(key), shape, 0, maxval).astype(jnp.int32)


@pytest.mark.parametrize("name", ["gwg", "dmala"])
def test_ising_4x4_at_three_betas_matches_exact_inference(name, assert_mc_close):
    x0 = random_start((NUM_CHAINS, 4, 4), 2).astype(jnp.int8)
    for beta in (0.2, 0.4407, 0.6):  # one compiled program for all three (same structure)
        m = ising_model(beta)
        alg = samplers(umrf.models.relaxation(m))[name]
        pos, _ = run(alg, m, x0, STEPS[name])
        states = pos.reshape(pos.shape[:2] + (16,))  # binary states = (s + 1) // 2, row-major
        exact_check(states, m.to_discrete_mrf(), assert_mc_close, f"{name} Ising β={beta}")


@pytest.mark.parametrize("name", ["gwg", "dmala"])
def test_potts_3x3_three_states_matches_exact_inference(name, assert_mc_close):
    m = umrf.models.potts(
        (3, 3), 3, coupling=0.8, field=jnp.array([0.3, 0.0, -0.2]), periodic=False
    )
    alg = samplers(umrf.models.relaxation(m))[name]
    pos, _ = run(alg, m, random_start((NUM_CHAINS, 3, 3), 3), STEPS[name])
    exact_check(pos.reshape(pos.shape[:2] + (9,)), m.to_discrete_mrf(), assert_mc_close, name)


def random_factor_graph(seed=0):
    """Loopy graph, a 3-way factor, mixed cardinalities and a hard zero."""
    rng = np.random.default_rng(seed)
    cards = [2, 3, 2, 2, 3]
    scopes = [(0, 1, 2), (2, 3), (3, 4), (4, 0), (1, 3), (0,), (4,)]
    factors = [Factor(s, rng.normal(scale=0.8, size=[cards[v] for v in s])) for s in scopes]
    table = np.asarray(factors[1].log_potential).copy()
    table[1, 1] = -np.inf  # x2 = 1 and x3 = 1 is impossible
    factors[1] = Factor((2, 3), table)
    return DiscreteMRF(cards, factors)


@pytest.mark.parametrize("name", ["gwg", "dmala"])
def test_random_mrf_with_three_way_factor_and_hard_zero_matches_exact(name, assert_mc_close):
    mrf = random_factor_graph()
    relaxed = umrf.models.relaxation(mrf)
    assert relaxed.num_categories == (2, 3, 2, 2, 3)
    alg = samplers(relaxed)[name]
    x0 = jnp.tile(jnp.array([0, 0, 0, 0, 0], jnp.int32), (NUM_CHAINS, 1))  # a legal start
    pos, trace = run(alg, mrf, x0, STEPS[name])
    exact_check(pos, mrf, assert_mc_close, name)
    assert float(trace.info.acceptance_rate.mean()) > 0.2


def rbm_case():
    rng = np.random.default_rng(3)
    nv, nh = 8, 3
    W = rng.normal(scale=1.0, size=(nv, nh)).astype(np.float32)
    b = rng.normal(scale=0.5, size=nv).astype(np.float32)
    c = rng.normal(scale=0.5, size=nh).astype(np.float32)
    return umrf.models.BernoulliRBM(W, b, c)


def enumerated_stats(energy_fn, params, n, k):
    """Exact P(x_i = s) and P(x_0 = a, x_1 = b) by enumerating k^n states (float64 numpy)."""
    states = np.asarray(list(itertools.product(range(k), repeat=n)), np.int32)
    e = np.asarray(jax.vmap(lambda x: energy_fn(params, x))(jnp.asarray(states)), np.float64)
    p = np.exp(-(e - e.min()))
    p /= p.sum()
    single = np.stack([(states == s).T @ p for s in range(k)], -1)  # (n, k)
    pair = np.asarray(
        [[p[(states[:, 0] == a) & (states[:, 1] == b)].sum() for b in range(k)] for a in range(k)]
    )
    return single, pair


@pytest.mark.parametrize("name", ["dmala"])
def test_rbm_free_energy_visible_chain_matches_enumeration(name, assert_mc_close):
    rbm = rbm_case()
    alg = samplers(umrf.models.relaxation(rbm))[name]
    pos, _ = run(alg, rbm, jnp.zeros((NUM_CHAINS, 8), jnp.int8), STEPS[name])
    single, pair = enumerated_stats(lambda m, v: m.free_energy(v), rbm, 8, 2)
    assert_mc_close(pos == 1, single[:, 1], what=f"{name} RBM P(v_i = 1)")
    joint = (pos[..., 0, None, None] == np.arange(2)[:, None]) & (
        pos[..., 1, None, None] == np.arange(2)[None, :]
    )
    assert_mc_close(joint, pair, what=f"{name} RBM P(v_0, v_1)")


class OneHotEnergy(nnx.Module):
    """A small MLP energy on a one-hot (n, K) input."""

    def __init__(self, n, k, rngs):
        self.lin1 = nnx.Linear(n * k, 16, rngs=rngs)
        self.lin2 = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        h = jnp.tanh(self.lin1(x.reshape(-1)))
        return 2.0 * self.lin2(h)[0]


@pytest.mark.parametrize("name", ["gwg"])
def test_neural_energy_on_one_hot_inputs_matches_enumeration(name, assert_mc_close):
    n, k = 4, 3
    energy_fn, params = umrf.models.nnx_energy(OneHotEnergy(n, k, nnx.Rngs(0)))
    relaxed = umrf.models.Relaxation(energy_fn, k)
    alg = samplers(relaxed)[name]
    pos, _ = run(alg, params, random_start((NUM_CHAINS, n), k), STEPS[name])
    single, pair = enumerated_stats(
        lambda p, x: energy_fn(p, umrf.models.encode_states(x, k)), params, n, k
    )
    assert_mc_close(pos[..., None] == np.arange(k), single, what=f"{name} MLP P(x_i = s)")
    joint = (pos[..., 0, None, None] == np.arange(k)[:, None]) & (
        pos[..., 1, None, None] == np.arange(k)[None, :]
    )
    assert_mc_close(joint, pair, what=f"{name} MLP P(x_0, x_1)")


@pytest.mark.parametrize("name", ["gwg"])
def test_a_sampler_that_ignores_the_energy_fails_the_same_check(name, assert_mc_close):
    m = ising_model(0.4407)

    def flat_energy(params, x):  # the uniform distribution: ignores the model
        return 0.0 * jnp.sum(x)

    alg = samplers(umrf.models.Relaxation(flat_energy, None))[name]
    pos, _ = run(alg, m, random_start((NUM_CHAINS, 4, 4), 2).astype(jnp.int8), STEPS[name])
    with pytest.raises(AssertionError):
        exact_check(pos.reshape(pos.shape[:2] + (16,)), m.to_discrete_mrf(), assert_mc_close, "x")


# --------------------------------------------------------------------------- structure


def test_value_equality_and_no_recompile_on_rebuilt_samplers(count_compiles):
    a, b = ising_model(0.3), ising_model(0.5)
    x0 = jnp.zeros((8, 4, 4), jnp.int8)
    for make in (
        lambda r: umrf.samplers.gwg(r.energy_fn, num_categories=r.num_categories),
        lambda r: umrf.samplers.dmala(r.energy_fn, step_size=0.4),
        lambda r: umrf.samplers.dula(r.energy_fn, step_size=0.4, temperature=2.0),
    ):
        alg = make(umrf.models.relaxation(a))
        umrf.sample_chains(alg, jax.random.key(0), a, x0, num_steps=3)
        rebuilt = make(umrf.models.relaxation(b))
        assert rebuilt == alg and hash(rebuilt) == hash(alg)
        with count_compiles() as c:
            final, _ = umrf.sample_chains(rebuilt, jax.random.key(1), b, x0, num_steps=3)
            jax.block_until_ready(final)
        assert c.compiles == 0 and c.traces == 0
    r = umrf.models.relaxation(a)
    assert umrf.samplers.gwg(r.energy_fn) != umrf.samplers.gwg(r.energy_fn, temperature=2.0)
    assert umrf.samplers.dmala(r.energy_fn, step_size=0.4) != umrf.samplers.dmala(
        r.energy_fn, step_size=0.5
    )
    assert umrf.samplers.dmala(r.energy_fn, step_size=0.4) != umrf.samplers.dula(
        r.energy_fn, step_size=0.4
    )
    mrf = random_factor_graph(1)
    assert umrf.models.relaxation(mrf) == umrf.models.relaxation(random_factor_graph(2))


@pytest.mark.parametrize("name", ["gwg"])
def test_eight_devices_give_the_same_states_and_vmap_matches_single_chains(name):
    m = umrf.models.potts((3, 3), 3, coupling=0.5, periodic=False)
    alg = samplers(umrf.models.relaxation(m))[name]
    x0 = random_start((16, 3, 3), 3)
    one, _ = umrf.sample_chains(alg, jax.random.key(5), m, x0, num_steps=30)
    mesh = umrf.sharding.chains_mesh()
    many, _ = umrf.sample_chains(alg, jax.random.key(5), m, x0, num_steps=30, mesh=mesh)
    np.testing.assert_array_equal(np.asarray(one.position), np.asarray(many.position))
    keys = jax.random.split(jax.random.key(6), 16)
    states = jax.vmap(alg.init, in_axes=(0, None))(x0, m)
    batched, _ = jax.jit(jax.vmap(alg.step, in_axes=(0, 0, None)))(keys, states, m)
    for c in (0, 7, 15):
        single, _ = jax.jit(alg.step)(keys[c], alg.init(x0[c], m), m)
        np.testing.assert_array_equal(np.asarray(batched.position[c]), np.asarray(single.position))


def test_bad_input_gets_clear_errors():
    m = ising_model(0.3)
    r = umrf.models.relaxation(m)
    alg = umrf.samplers.gwg(r.energy_fn)
    with pytest.raises(ValueError, match="binary"):
        alg.init(jnp.full((4, 4), -1, jnp.int8), m)  # spins instead of states
    with pytest.raises(ValueError, match="num_categories"):
        umrf.samplers.gwg(r.energy_fn, num_categories=1)
    with pytest.raises(TypeError, match="num_categories"):
        umrf.samplers.gwg(r.energy_fn, num_categories="three")
    with pytest.raises(ValueError, match="step_size"):
        umrf.samplers.dmala(r.energy_fn, step_size=0.0)
    with pytest.raises(TypeError, match="energy_fn"):
        umrf.samplers.gwg(None)
    p = umrf.models.potts((2, 2), 3)
    rp = umrf.models.relaxation(p)
    cat = umrf.samplers.dmala(rp.energy_fn, step_size=0.3, num_categories=3)
    with pytest.raises(TypeError, match="int array"):
        cat.init(jnp.zeros((2, 2), jnp.float32), p)
    with pytest.raises(ValueError, match="outside"):
        cat.init(jnp.full((2, 2), 3, jnp.int32), p)
    mixed = umrf.samplers.gwg(lambda q, x: jnp.sum(x), num_categories=(2, 3))
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        mixed.init(jnp.zeros(3, jnp.int32), None)
    with pytest.raises(ValueError, match="outside"):
        mixed.init(jnp.array([2, 0], jnp.int32), None)  # variable 0 has 2 states
    vec = umrf.samplers.gwg(lambda q, x: x)  # not a scalar
    with pytest.raises(ValueError, match="scalar"):
        vec.init(jnp.zeros(3, jnp.int32), None)
    with pytest.raises(TypeError, match="Ising"):
        r.energy_fn(p, jnp.zeros((2, 2)))
    with pytest.raises(TypeError, match="num_categories"):
        umrf.models.relaxation(umrf.models.Gaussian(jnp.zeros(2), jnp.eye(2)))


def test_non_finite_params_are_flagged_and_hard_zero_moves_are_rejections():
    m = ising_model(0.3)
    r = umrf.models.relaxation(m)
    alg = umrf.samplers.gwg(r.energy_fn)
    bad = umrf.models.Ising(m.shape, m.periodic, jnp.float32(jnp.nan), m.field)
    state = alg.init(jnp.zeros((4, 4), jnp.int8), m)
    _, info = alg.step(jax.random.key(0), state, bad)
    assert bool(info.diverged) and not bool(info.is_accepted)
    # a two-variable model whose only other state is a hard zero: every proposal is rejected
    mrf = DiscreteMRF([2], [Factor((0,), jnp.array([0.0, -jnp.inf]))])
    rm = umrf.models.relaxation(mrf)
    for alg in (
        umrf.samplers.gwg(rm.energy_fn, num_categories=rm.num_categories),
        umrf.samplers.dula(rm.energy_fn, step_size=5.0, num_categories=rm.num_categories),
    ):
        _, trace = umrf.sample_chains(
            alg, jax.random.key(1), mrf, jnp.zeros((4, 1), jnp.int32), num_steps=50
        )
        assert np.all(np.asarray(trace.position) == 0)
        assert not bool(trace.info.diverged.any())
