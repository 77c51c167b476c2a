"""Ising/Potts lattices: energies, exact small-size thermodynamics, fast checkerboard sampler."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.models import ising, potts
from umrf.samplers._lattice_gibbs import _fixed_point, lazy_less

NUM_CHAINS = 64


# ------------------------------------------------------------------ exact enumeration (numpy)
ALL_4x4 = np.asarray(list(itertools.product([-1, 1], repeat=16)), np.int8).reshape(-1, 4, 4)


def exact_ising_4x4(beta, field=0.0):
    s = ALL_4x4.astype(np.float64)
    pair = (s * np.roll(s, -1, 1)).sum((1, 2)) + (s * np.roll(s, -1, 2)).sum((1, 2))
    energy = -beta * pair - field * s.sum((1, 2))
    logw = -energy
    log_z = np.logaddexp.reduce(logw)
    p = np.exp(logw - log_z)
    m = s.mean((1, 2))
    return {
        "log_z": log_z,
        "energy_per_site": float(p @ (energy / 16)),
        "abs_m": float(p @ np.abs(m)),
        "m2": float(p @ m**2),
    }


@pytest.mark.parametrize(("shape", "periodic"), [((4,), True), ((4, 6), False), ((2, 4, 2), True)])
def test_energy_matches_discrete_mrf(shape, periodic):
    rng = np.random.default_rng(0)
    h = rng.normal(size=shape)
    m = ising(shape, coupling=0.7, field=h, periodic=periodic)
    mrf = m.to_discrete_mrf()
    for _ in range(2):
        s = jnp.asarray(rng.choice([-1, 1], size=shape), jnp.int8)
        np.testing.assert_allclose(
            m.energy(s), mrf.energy(m.spins_to_states(s)), rtol=1e-5, atol=1e-5
        )
        assert np.array_equal(m.states_to_spins(m.spins_to_states(s)), s)
    p = potts(shape, 3, coupling=-0.4, field=rng.normal(size=shape + (3,)), periodic=periodic)
    pm = p.to_discrete_mrf()
    x = jnp.asarray(rng.integers(0, 3, size=shape), jnp.int8)
    np.testing.assert_allclose(
        p.energy(x), pm.energy(x.reshape(-1).astype(jnp.int32)), rtol=1e-5, atol=1e-5
    )


def test_energy_by_hand():
    # 2x2 periodic: each axis bonds every site to its +1 neighbour -> 8 bonds
    m = ising((2, 2), coupling=1.0, field=0.5)
    s = jnp.array([[1, -1], [1, 1]], jnp.int8)
    # horizontal bonds (wrap doubles them): rows [1,-1] -> 2*(-1); [1,1] -> 2*(1); vertical:
    # cols [1,1] -> 2; [-1,1] -> -2 ; total pair = 0, field term 0.5*2
    assert float(m.energy(s)) == pytest.approx(-1.0)
    open_m = ising((2, 2), coupling=1.0, field=0.0, periodic=False)
    assert float(open_m.energy(jnp.ones((2, 2), jnp.int8))) == pytest.approx(-4.0)


@pytest.mark.parametrize("beta", [0.2, 0.4407, 0.7])
def test_exact_log_partition_through_exact_engine(beta):
    ref = exact_ising_4x4(beta, 0.1)
    lz = umrf.inference.log_partition(ising((4, 4), coupling=beta, field=0.1).to_discrete_mrf())
    np.testing.assert_allclose(float(lz), ref["log_z"], rtol=1e-5)


@pytest.fixture(scope="module")
def ising_4x4_alg():
    return umrf.samplers.gibbs(ising((4, 4), coupling=0.3))


@pytest.mark.parametrize("beta", [0.2, 0.4407, 0.7])
def test_fast_ising_energy_and_magnetisation_across_transition(
    ising_4x4_alg, beta, assert_mc_close
):
    model = ising((4, 4), coupling=beta)
    ref = exact_ising_4x4(beta)
    x0 = jnp.where(jax.random.bernoulli(jax.random.key(1), 0.5, (NUM_CHAINS, 4, 4)), 1, -1)
    _, trace = umrf.sample_chains(
        ising_4x4_alg, jax.random.key(2), model, x0.astype(jnp.int8), num_steps=2000
    )
    assert not bool(jnp.any(trace.info.diverged))
    pos = trace.position[200:]
    e = jax.vmap(jax.vmap(model.energy))(pos) / 16
    m = jnp.mean(pos.astype(jnp.float32), axis=(2, 3))
    stats = jnp.stack([e, jnp.abs(m), m**2], axis=-1)
    exact = [ref["energy_per_site"], ref["abs_m"], ref["m2"]]
    assert_mc_close(stats, exact, what=f"beta={beta}")


def exact_one_sweep_marginals(s0, J, h):
    """P(s_i = +1) after one checkerboard sweep from s0 (black = even parity first)."""
    H, W = s0.shape
    sig = lambda a: 1.0 / (1.0 + np.exp(-2.0 * a))  # noqa: E731
    nbrs = lambda r, c: [((r + 1) % H, c), ((r - 1) % H, c), (r, (c + 1) % W), (r, (c - 1) % W)]  # noqa: E731
    out = np.zeros((H, W))
    p_black = {}
    for r, c in itertools.product(range(H), range(W)):
        if (r + c) % 2 == 0:
            p_black[(r, c)] = sig(J * sum(s0[n] for n in nbrs(r, c)) + h[r, c])
            out[r, c] = p_black[(r, c)]
    for r, c in itertools.product(range(H), range(W)):
        if (r + c) % 2 == 1:
            nb = nbrs(r, c)
            total = 0.0
            for spins in itertools.product([-1, 1], repeat=4):
                w = np.prod(
                    [
                        p_black[n] if sp == 1 else 1 - p_black[n]
                        for n, sp in zip(nb, spins, strict=True)
                    ]
                )
                total += w * sig(J * sum(spins) + h[r, c])
            out[r, c] = total
    return out


@pytest.mark.parametrize("per_site", [False, True])
def test_one_sweep_transition_is_exact(per_site):
    """The fast sweep's one-step kernel equals the exact block-Gibbs kernel (site marginals)."""
    rng = np.random.default_rng(3)
    h = rng.normal(scale=0.5, size=(4, 4)) if per_site else np.full((4, 4), 0.3)
    model = ising((4, 4), coupling=0.6, field=h if per_site else 0.3)
    alg = umrf.samplers.gibbs(model)
    s0 = rng.choice([-1, 1], size=(4, 4)).astype(np.int8)
    n = 40000
    keys = jax.random.split(jax.random.key(4), n)
    state = alg.init(jnp.asarray(s0), model)
    new, info = jax.jit(jax.vmap(alg.step, in_axes=(0, None, None)))(keys, state, model)
    freq = np.asarray(jnp.mean(new.position == 1, axis=0))
    exact = exact_one_sweep_marginals(s0.astype(np.float64), 0.6, h)
    assert np.max(np.abs(freq - exact)) < 5 * 0.5 / np.sqrt(n)
    assert not bool(jnp.any(info.diverged))


def test_fast_ising_equals_generic_gibbs_in_distribution(assert_mc_close):
    """Both samplers hit the exact per-site and bond statistics of an open lattice with fields."""
    rng = np.random.default_rng(5)
    h = rng.normal(scale=0.4, size=(3, 5))
    model = ising((3, 5), coupling=0.5, field=h, periodic=False)
    mrf = model.to_discrete_mrf()
    exact = umrf.inference.marginals(mrf)
    p_up = np.asarray([float(v[1]) for v in exact.variables]).reshape(3, 5)
    x0 = jnp.ones((NUM_CHAINS, 3, 5), jnp.int8)
    _, tr_fast = umrf.sample_chains(
        umrf.samplers.gibbs(model), jax.random.key(6), model, x0, num_steps=1500
    )
    _, tr_gen = umrf.sample_chains(
        umrf.samplers.gibbs(mrf),
        jax.random.key(7),
        mrf,
        jnp.ones((NUM_CHAINS, 15), jnp.int32),
        num_steps=1500,
    )
    fast = np.asarray(tr_fast.position[150:] == 1).reshape(-1, NUM_CHAINS, 15)
    gen = np.asarray(tr_gen.position[150:] == 1)
    assert_mc_close(fast, p_up.reshape(-1), what="fast")
    assert_mc_close(gen, p_up.reshape(-1), what="generic")


def test_fixed_point_thresholds_are_exact():
    p = jnp.concatenate(
        [
            jax.random.uniform(jax.random.key(0), (1000,)),
            jnp.array([0.0, 1.0, 0.5, 1e-9, 1 - 2**-24]),
        ]
    )
    hi, lo = _fixed_point(p)
    t = np.asarray(hi).astype(np.int64) * 65536 + np.asarray(lo).astype(np.int64)
    want = np.minimum(np.floor(np.asarray(p, np.float64) * 2.0**32), 2**32 - 1).astype(np.int64)
    assert np.array_equal(t, want)
    # the kernel's lazy 16+16-bit comparison equals the 32-bit comparison R < T, ties included
    th = np.concatenate([np.asarray(hi[:200])] * 3).astype(np.int64)
    tl = np.concatenate([np.asarray(lo[:200])] * 3).astype(np.int64)
    a = np.concatenate([th[:200], np.arange(200) * 331 % 65536, np.minimum(th[:200] + 1, 65535)])
    b = np.arange(600) * 163 % 65536
    u16 = lambda v: jnp.asarray(v, jnp.uint16)  # noqa: E731
    lazy = np.asarray(lazy_less(u16(a), u16(b), u16(th), u16(tl)))
    assert np.array_equal(lazy, a * 65536 + b < th * 65536 + tl)


def test_potts_lattice_sampler_matches_exact(assert_mc_close):
    model = potts((3, 3), 3, coupling=0.8, field=jnp.array([0.3, 0.0, -0.2]), periodic=False)
    exact = umrf.inference.marginals(model.to_discrete_mrf())
    alg = umrf.samplers.gibbs(model)
    _, trace = umrf.sample_chains(
        alg, jax.random.key(8), model, jnp.zeros((NUM_CHAINS, 3, 3), jnp.int8), num_steps=1500
    )
    pos = np.asarray(trace.position[150:]).reshape(-1, NUM_CHAINS, 9)
    onehot = pos[..., None] == np.arange(3)
    assert_mc_close(
        onehot, np.stack([np.asarray(v) for v in exact.variables]), what="Potts lattice"
    )


def test_lattice_evidence_is_clamped():
    model = ising((4, 4), coupling=0.5, field=0.0)
    alg = umrf.samplers.gibbs(model, evidence={(0, 0): -1, 5: 1})
    x0 = jnp.ones((8, 4, 4), jnp.int8)
    _, trace = umrf.sample_chains(alg, jax.random.key(9), model, x0, num_steps=50)
    pos = np.asarray(trace.position)
    assert np.all(pos[:, :, 0, 0] == -1) and np.all(pos[:, :, 1, 1] == 1)
    assert pos[:, :, 2:, 2:].std() > 0  # the rest moves
    palg = umrf.samplers.gibbs(potts((2, 2), 3), evidence={(1, 1): 2})
    st = palg.init(jnp.zeros((2, 2), jnp.int8), potts((2, 2), 3))
    for i in range(5):
        st, _ = palg.step(jax.random.key(i), st, potts((2, 2), 3))
        assert int(st.position[1, 1]) == 2


def test_no_recompile_and_diverged_flag():
    model = ising((4, 4), coupling=0.3, field=jnp.zeros((4, 4)))
    alg = umrf.samplers.gibbs(model)

    @chex.assert_max_traces(n=1)
    def sweep(key, state, params):
        return alg.step(key, state, params)

    sweep = jax.jit(sweep)
    state = alg.init(jnp.ones((4, 4), jnp.int8), model)
    for beta in (0.1, 0.4, 0.8):
        state, info = sweep(
            jax.random.key(0), state, ising((4, 4), coupling=beta, field=jnp.ones((4, 4)))
        )
        assert not bool(info.diverged)
    bad = jax.tree_util.tree_map(lambda x: x * jnp.nan, model)
    _, info = sweep(jax.random.key(1), state, bad)
    assert bool(info.diverged)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="even side"):
        ising((3, 4))
    with pytest.raises(ValueError, match="field"):
        ising((4, 4), field=jnp.zeros((4, 5)))
    with pytest.raises(ValueError, match="coupling"):
        ising((4, 4), coupling=jnp.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        ising((4, 4), field=jnp.full((4, 4), jnp.nan))
    with pytest.raises(TypeError, match="shape"):
        ising("4x4")
    with pytest.raises(ValueError, match="num_states"):
        potts((4, 4), 1)
    with pytest.raises(ValueError, match="field"):
        potts((4, 4), 3, field=jnp.zeros(4))
    model = ising((4, 4))
    alg = umrf.samplers.gibbs(model)
    with pytest.raises(ValueError, match="not valid"):
        alg.init(jnp.zeros((4, 4), jnp.int8), model)
    with pytest.raises(ValueError, match="lattice shape"):
        alg.init(jnp.ones((4, 5), jnp.int8), model)
    with pytest.raises(ValueError, match="not a valid"):
        umrf.samplers.gibbs(model, evidence={(0, 0): 0})
    with pytest.raises(ValueError, match="outside the lattice"):
        umrf.samplers.gibbs(model, evidence={(4, 0): 1})
    with pytest.raises(ValueError, match="same structure"):
        alg.step(
            jax.random.key(0),
            alg.init(jnp.ones((4, 4), jnp.int8), model),
            ising((4, 4), field=jnp.zeros((4, 4))),
        )
    with pytest.raises(ValueError, match="lattice shape"):
        model.energy(jnp.ones((4, 5), jnp.int8))
