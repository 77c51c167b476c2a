"""Every sampler constructor: equal inputs, equal algorithms; a rebuilt sampler never recompiles.

The driver keys its compiled programs on the algorithm (DESIGN.md §3), so a loop
that rebuilds its sampler from a model of the same structure must reuse them.
Each case builds the sampler twice from *new* objects of equal structure (new
model numbers, the same energy function object, equal hyperparameters), checks
equality and hash, runs ``sample_chains`` once, then counts JAX traces and XLA
compilations of the second run: there must be none.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.models import DiscreteMRF, Factor


def gaussian_energy(m, x):
    return m.energy(x)


def noised_score(m, x, sigma):
    return -(x - m.mean) / (1.0 + sigma**2)


def gaussian(seed):
    mean = jnp.asarray(np.random.default_rng(seed).normal(size=2), jnp.float32)
    return umrf.models.Gaussian(mean, jnp.eye(2))


def loopy_mrf(seed):
    rng = np.random.default_rng(seed)
    scopes = [(0, 1), (1, 2), (2, 0), (2, 3), (1, 2, 3)]
    cards = [2, 3, 2, 2]
    factors = [
        Factor(s, jnp.asarray(rng.normal(size=[cards[v] for v in s]), jnp.float32)) for s in scopes
    ]
    return DiscreteMRF(cards, factors)


def random_rbm(seed):
    rng = np.random.default_rng(seed)
    return umrf.models.BernoulliRBM(
        jnp.asarray(rng.normal(size=(6, 3)), jnp.float32),
        jnp.asarray(rng.normal(size=6), jnp.float32),
        jnp.asarray(rng.normal(size=3), jnp.float32),
    )


def ising_energy(m, x):
    return m.energy(x)


def linear_logits(w, x):
    return w @ x


def build(name, seed):
    """``(alg, params, x0)`` of case ``name``; ``seed`` changes numbers, never structure."""
    x_cont = jnp.zeros((4, 2))
    if name == "ula":
        return umrf.samplers.ula(gaussian_energy, step_size=0.1), gaussian(seed), x_cont
    if name == "ula_clamped":
        x0 = umrf.samplers.Clamped(x_cont, jnp.zeros((4, 2), bool).at[:, 0].set(True))
        return umrf.samplers.ula(gaussian_energy, step_size=0.1), gaussian(seed), x0
    if name == "mala":
        alg = umrf.samplers.mala(gaussian_energy, step_size=0.3, temperature=2.0)
        return alg, gaussian(seed), x_cont
    if name == "mala_on_umrf_score_energy":
        # umrf.logdensity / umrf.score build value-equal functions too
        energy = umrf.logdensity(gaussian_energy, temperature=0.5)
        return umrf.samplers.mala(energy, step_size=0.1), gaussian(seed), x_cont
    if name == "annealed_langevin":
        alg = umrf.samplers.annealed_langevin(
            noised_score, sigmas=[1.0, 0.5], steps_per_level=2, eps=0.01
        )
        return alg, gaussian(seed), x_cont
    if name == "gibbs_discrete_mrf":
        mrf = loopy_mrf(seed)
        return umrf.samplers.gibbs(mrf), mrf, jnp.zeros((4, 4), jnp.int32)
    if name == "gibbs_discrete_mrf_evidence":
        mrf = loopy_mrf(seed)
        alg = umrf.samplers.gibbs(mrf, evidence={1: 2})
        return alg, mrf, jnp.zeros((4, 4), jnp.int32)
    if name == "gibbs_ising":
        m = umrf.models.ising((6, 6), 0.3 + 0.01 * seed, 0.1 * seed)
        return umrf.samplers.gibbs(m), m, jnp.ones((4, 6, 6), jnp.int8)
    if name == "gibbs_ising_site_field":
        field = jnp.asarray(np.random.default_rng(seed).normal(size=(6, 6)), jnp.float32)
        m = umrf.models.ising((6, 6), 0.4, field, periodic=False)
        alg = umrf.samplers.gibbs(m, evidence={(0, 0): 1})
        return alg, m, jnp.ones((4, 6, 6), jnp.int8)
    if name == "gibbs_potts":
        m = umrf.models.potts((4, 4), 3, 0.5 + 0.1 * seed)
        return umrf.samplers.gibbs(m), m, jnp.zeros((4, 4, 4), jnp.int8)
    if name == "gibbs_rbm":
        rbm = random_rbm(seed)
        return umrf.samplers.gibbs(rbm), rbm, jnp.zeros((4, 6), jnp.float32)
    if name == "gwg_ising":
        m = umrf.models.ising((6, 6), 0.3 + 0.01 * seed, 0.1 * seed)
        r = umrf.models.relaxation(m)
        alg = umrf.samplers.gwg(r.energy_fn, num_categories=r.num_categories)
        return alg, m, jnp.zeros((4, 6, 6), jnp.int8)
    if name == "gwg_potts":
        m = umrf.models.potts((4, 4), 3, 0.5 + 0.1 * seed)
        r = umrf.models.relaxation(m)
        alg = umrf.samplers.gwg(r.energy_fn, num_categories=r.num_categories)
        return alg, m, jnp.zeros((4, 4, 4), jnp.int8)
    if name == "dula_discrete_mrf":
        mrf = loopy_mrf(seed)
        r = umrf.models.relaxation(mrf)
        alg = umrf.samplers.dula(r.energy_fn, step_size=0.5, num_categories=r.num_categories)
        return alg, mrf, jnp.zeros((4, 4), jnp.int32)
    if name == "dmala_rbm":
        rbm = random_rbm(seed)
        r = umrf.models.relaxation(rbm)
        alg = umrf.samplers.dmala(r.energy_fn, step_size=0.5, num_categories=r.num_categories)
        return alg, rbm, jnp.zeros((4, 6), jnp.float32)
    if name == "parallel_tempering_gwg":
        m = umrf.models.ising((4, 4), 0.8 + 0.01 * seed)
        r = umrf.models.relaxation(m)
        alg = umrf.samplers.parallel_tempering(
            functools.partial(umrf.samplers.gwg, r.energy_fn),
            temperatures=umrf.samplers.geometric_temperatures(4.0, 3),
        )
        return alg, m, jnp.ones((4, 3, 4, 4), jnp.int8)
    if name == "tempered_gibbs":
        m = umrf.models.ising((4, 4), 0.8 + 0.01 * seed)
        alg = umrf.samplers.tempered(umrf.samplers.gibbs(m), ising_energy, temperature=2.0)
        return alg, m, jnp.ones((4, 4, 4), jnp.int8)
    if name == "jem_sgld":
        alg = umrf.losses.jem_sgld(umrf.losses.jem_energy(linear_logits))
        w = jnp.asarray(np.random.default_rng(seed).normal(size=(3, 2)), jnp.float32)
        return alg, w, x_cont
    raise KeyError(name)


CASES = [
    "ula",
    "ula_clamped",
    "mala",
    "mala_on_umrf_score_energy",
    "annealed_langevin",
    "gibbs_discrete_mrf",
    "gibbs_discrete_mrf_evidence",
    "gibbs_ising",
    "gibbs_ising_site_field",
    "gibbs_potts",
    "gibbs_rbm",
    "gwg_ising",
    "gwg_potts",
    "dula_discrete_mrf",
    "dmala_rbm",
    "parallel_tempering_gwg",
    "tempered_gibbs",
    "jem_sgld",
]


@pytest.mark.parametrize("name", CASES)
def test_rebuilt_sampler_is_equal_and_never_recompiles(name, count_compiles):
    alg, params, x0 = build(name, 0)
    again, new_params, _ = build(name, 1)
    assert alg == again and hash(alg) == hash(again)
    umrf.sample_chains(alg, jax.random.key(0), params, x0, num_steps=3)
    key = jax.random.key(1)
    with count_compiles() as c:
        final, _ = umrf.sample_chains(again, key, new_params, x0, num_steps=3)
        jax.block_until_ready(final)
    assert (c.traces, c.compiles) == (0, 0), name


def test_counter_sees_a_recompile_for_new_hyperparameters(count_compiles):
    """The check above can fail: a different step size is a different program."""
    alg, params, x0 = build("mala", 0)
    umrf.sample_chains(alg, jax.random.key(0), params, x0, num_steps=3)
    other = umrf.samplers.mala(gaussian_energy, step_size=0.31, temperature=2.0)
    assert other != alg
    with count_compiles() as c:
        umrf.sample_chains(other, jax.random.key(0), params, x0, num_steps=3)
    assert c.traces > 0 and c.compiles > 0


def test_different_structure_or_function_gives_a_different_algorithm():
    m1 = umrf.models.ising((6, 6), 0.3)
    assert umrf.samplers.gibbs(m1) != umrf.samplers.gibbs(umrf.models.ising((8, 8), 0.3))
    assert umrf.samplers.gibbs(m1) != umrf.samplers.gibbs(m1, evidence={0: 1})
    assert umrf.samplers.gibbs(m1) != umrf.samplers.gibbs(
        umrf.models.ising((6, 6), 0.3, 0.0, periodic=False)
    )

    def other_energy(m, x):
        return m.energy(x)

    assert umrf.samplers.ula(gaussian_energy, step_size=0.1) != umrf.samplers.ula(
        other_energy, step_size=0.1
    )
    assert umrf.samplers.gibbs(loopy_mrf(0)) != umrf.samplers.gibbs(
        DiscreteMRF([2, 2], [Factor((0, 1), jnp.zeros((2, 2)))])
    )
