"""The discrete Langevin proposal: its exact per-coordinate law, DMALA's exactness at two step
sizes, DULA's step-size bias (caught by the same check that DMALA passes).

The marginal checks on Ising/Potts/random MRFs for DMALA and GWG are in test_gwg.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf


def ising_stats(pos):
    """P(x_i = 1) and P(x_i = x_{i+e_a}) on the periodic 4x4 lattice, from (draws, chains, 4, 4)."""
    single = pos == 1
    bonds = [pos == np.roll(pos, -1, axis=a) for a in (2, 3)]
    return single.reshape(pos.shape[:2] + (16,)), np.concatenate(
        [b.reshape(pos.shape[:2] + (16,)) for b in bonds], -1
    )


def exact_ising_stats(m):
    mrf = m.to_discrete_mrf()
    exact = umrf.inference.marginals(mrf)
    single = np.asarray([float(v[1]) for v in exact.variables])
    same = {}
    for f, t in zip(mrf.factors, exact.factors, strict=True):
        if len(f.scope) == 2:
            same[f.scope] = float(t[0, 0] + t[1, 1])
    idx = np.arange(16).reshape(4, 4)
    pairs = [
        (int(i), int(j))
        for a in (0, 1)
        for i, j in zip(idx.ravel(), np.roll(idx, -1, a).ravel(), strict=True)
    ]
    return single, np.asarray([same.get((i, j), same.get((j, i))) for i, j in pairs])


@pytest.fixture(scope="module")
def target():
    m = umrf.models.ising((4, 4), coupling=0.4407, field=0.1)
    x0 = jax.random.bernoulli(jax.random.key(1), 0.5, (64, 4, 4)).astype(jnp.int8)
    return m, umrf.models.relaxation(m), x0, exact_ising_stats(m)


def check(pos, exact, assert_mc_close, what):
    single, bonds = ising_stats(pos)
    assert_mc_close(single, exact[0], what=f"{what}: P(x_i = 1)")
    assert_mc_close(bonds, exact[1], what=f"{what}: P(x_i = x_j)")


def run(alg, m, x0, num_steps):
    _, trace = umrf.sample_chains(alg, jax.random.key(0), m, x0, num_steps=num_steps)
    assert not bool(trace.info.diverged.any())
    pos = np.asarray(trace.position)
    return pos[len(pos) // 5 :], trace


def test_dmala_at_a_small_step_size_is_exact(target, assert_mc_close):
    m, r, x0, exact = target
    pos, trace = run(umrf.samplers.dmala(r.energy_fn, step_size=0.2), m, x0, 2500)
    check(pos, exact, assert_mc_close, "DMALA α=0.2")
    assert float(trace.info.acceptance_rate.mean()) > 0.7  # small steps: few rejections


def test_dula_is_biased_at_a_large_step_and_the_same_check_catches_it(target, assert_mc_close):
    """The unadjusted chain's stationary law is not p: the check that DMALA passes must fail."""
    m, r, x0, exact = target
    pos, trace = run(umrf.samplers.dula(r.energy_fn, step_size=0.6), m, x0, 2500)
    assert float(trace.info.acceptance_rate.mean()) == 1.0
    with pytest.raises(AssertionError):
        check(pos, exact, assert_mc_close, "DULA α=0.6")
    pos, _ = run(umrf.samplers.dmala(r.energy_fn, step_size=0.6), m, x0, 2500)
    check(pos, exact, assert_mc_close, "DMALA α=0.6")  # the MH correction removes the bias


def test_binary_proposal_flips_each_unit_with_the_langevin_probability():
    """From a fixed x, DULA flips unit i independently with probability σ(½ d̃_i − 1/(2α))."""
    w = jnp.array([-2.0, -0.5, 0.0, 0.7, 1.5, 3.0])
    x = jnp.array([0, 1, 0, 1, 0, 1], jnp.int32)

    def energy(params, z):  # independent bits: E = -wᵀz, so d̃_i = w_i (1 - 2 x_i)
        return -jnp.dot(params, z)

    alpha = 0.8
    alg = umrf.samplers.dula(energy, step_size=alpha)
    state = alg.init(x, w)
    keys = jax.random.split(jax.random.key(0), 20000)
    new = jax.jit(jax.vmap(lambda k: alg.step(k, state, w)[0].position))(keys)
    freq = (np.asarray(new) != np.asarray(x)).mean(0)
    d = np.asarray(w) * (1 - 2 * np.asarray(x))
    want = 1 / (1 + np.exp(-(0.5 * d - 0.5 / alpha)))
    assert np.all(np.abs(freq - want) <= 5 * np.sqrt(want * (1 - want) / 20000) + 1e-3), (
        freq,
        want,
    )


def test_categorical_proposal_redraws_each_variable_from_its_langevin_law():
    """One-hot: q(x'_i = k) ∝ exp(½ d̃_ik − [k ≠ x_i]/α), all variables independently."""
    theta = jnp.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]])
    x = jnp.array([0, 2], jnp.int32)

    def energy(params, z):  # independent categorical variables: E = -Σ θ_ik X_ik
        return -jnp.sum(params * z)

    alpha = 1.5
    alg = umrf.samplers.dula(energy, step_size=alpha, num_categories=3)
    state = alg.init(x, theta)
    keys = jax.random.split(jax.random.key(1), 20000)
    new = np.asarray(jax.jit(jax.vmap(lambda k: alg.step(k, state, theta)[0].position))(keys))
    for i in range(2):
        d = np.asarray(theta[i]) - float(theta[i, x[i]])
        logit = 0.5 * d - (np.arange(3) != int(x[i])) / alpha
        want = np.exp(logit - logit.max())
        want /= want.sum()
        freq = np.bincount(new[:, i], minlength=3) / 20000
        assert np.all(np.abs(freq - want) <= 5 * np.sqrt(want * (1 - want) / 20000) + 1e-3), (
            freq,
            want,
        )


def test_dmala_rejects_exactly_when_it_reports_a_rejection(target):
    m, r, x0, _ = target
    alg = umrf.samplers.dmala(r.energy_fn, step_size=1.5)
    state = jax.vmap(alg.init, in_axes=(0, None))(x0, m)
    keys = jax.random.split(jax.random.key(2), 64)
    new, info = jax.jit(jax.vmap(alg.step, in_axes=(0, 0, None)))(keys, state, m)
    moved = np.any(np.asarray(new.position != state.position), axis=(1, 2))
    accepted = np.asarray(info.is_accepted)
    assert np.all(moved <= accepted)  # a rejected step never moves
    assert 0 < accepted.sum() < 64
    e = np.asarray(jax.vmap(lambda s: m.energy(2 * s - 1))(new.position.astype(jnp.int8)))
    np.testing.assert_allclose(np.asarray(new.energy), e, rtol=1e-5, atol=1e-5)  # cache is right
