"""Bad input to the samplers: a clear error naming the argument, or a flag under tracing.

Concrete bad input raises ``TypeError``/``ValueError`` whose message names the
argument (the ``match``). Where a value can only be seen under tracing (inside
``jit``/``vmap``/``sample_chains``), the sampler reports it in ``Info.diverged``
or returns NaN: never a plausible number.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.models import DiscreteMRF, Factor


def quad(p, x):
    return 0.5 * jnp.sum(x**2)


def vector_energy(p, x):
    return x**2  # one value per coordinate: not an energy


def scalar_score(p, x, sigma):
    return jnp.sum(x)  # a score must have the shape of x


MALA = umrf.samplers.mala(quad, step_size=0.1)
X0 = jnp.zeros((4, 2))
KEY = jax.random.key(0)
MRF = DiscreteMRF([2, 3], [Factor((0, 1), jnp.zeros((2, 3)))])
ISING = umrf.models.ising((4, 4), 0.3)
BUFFER = umrf.samplers.ReplayBuffer(8, umrf.samplers.uniform_init((2,)))


def mesh_of(n):
    return umrf.sharding.chains_mesh(jax.devices()[:n])


CASES = {
    # sample_chains
    "alg is not an algorithm": (
        lambda: umrf.sample_chains(quad, KEY, None, X0, num_steps=2),
        TypeError,
        "alg",
    ),
    "key is an int": (
        lambda: umrf.sample_chains(MALA, 0, None, X0, num_steps=2),
        TypeError,
        "key",
    ),
    "key is a batch of keys": (
        lambda: umrf.sample_chains(MALA, jax.random.split(KEY, 2), None, X0, num_steps=2),
        ValueError,
        "key",
    ),
    "x0 has no chain axis": (
        lambda: umrf.sample_chains(MALA, KEY, None, jnp.float32(0.0), num_steps=2),
        ValueError,
        "x0",
    ),
    "x0 has NaN": (
        lambda: umrf.sample_chains(MALA, KEY, None, X0.at[0, 0].set(jnp.nan), num_steps=2),
        ValueError,
        "x0",
    ),
    "x0 leaves disagree on the chain count": (
        lambda: umrf.sample_chains(
            MALA, KEY, None, {"a": jnp.zeros((4, 1)), "b": jnp.zeros((3, 1))}, num_steps=2
        ),
        ValueError,
        "x0",
    ),
    "x0 has zero chains": (
        lambda: umrf.sample_chains(MALA, KEY, None, jnp.zeros((0, 2)), num_steps=2),
        ValueError,
        "x0",
    ),
    "num_steps is zero": (
        lambda: umrf.sample_chains(MALA, KEY, None, X0, num_steps=0),
        ValueError,
        "num_steps",
    ),
    "num_steps is a float": (
        lambda: umrf.sample_chains(MALA, KEY, None, X0, num_steps=2.0),
        TypeError,
        "num_steps",
    ),
    "thin exceeds num_steps": (
        lambda: umrf.sample_chains(MALA, KEY, None, X0, num_steps=2, thin=3),
        ValueError,
        "thin",
    ),
    "mesh is not a mesh": (
        lambda: umrf.sample_chains(MALA, KEY, None, X0, num_steps=2, mesh="cpu"),
        TypeError,
        "mesh",
    ),
    "mesh does not divide the chains": (
        lambda: umrf.sample_chains(
            MALA, KEY, None, jnp.zeros((3, 2)), num_steps=2, mesh=mesh_of(2)
        ),
        ValueError,
        "chains",
    ),
    "progress is zero chunks": (
        lambda: umrf.sample_chains(MALA, KEY, None, X0, num_steps=2, progress=-1),
        ValueError,
        "progress",
    ),
    # Langevin constructors and init
    "step_size is zero": (lambda: umrf.samplers.ula(quad, step_size=0.0), ValueError, "step_size"),
    "step_size is NaN": (
        lambda: umrf.samplers.mala(quad, step_size=float("nan")),
        ValueError,
        "step_size",
    ),
    "step_size is an array": (
        lambda: umrf.samplers.mala(quad, step_size=jnp.ones(2)),
        ValueError,
        "step_size",
    ),
    "step_size is a string": (
        lambda: umrf.samplers.ula(quad, step_size="0.1"),
        TypeError,
        "step_size",
    ),
    "temperature is negative": (
        lambda: umrf.samplers.ula(quad, step_size=0.1, temperature=-1.0),
        ValueError,
        "temperature",
    ),
    "energy_fn is not callable": (
        lambda: umrf.samplers.mala("quad", step_size=0.1),
        TypeError,
        "energy_fn",
    ),
    "energy is not a scalar": (
        lambda: umrf.samplers.ula(vector_energy, step_size=0.1).init(jnp.zeros(2), None),
        ValueError,
        "scalar",
    ),
    "integer position": (
        lambda: MALA.init(jnp.zeros(2, jnp.int32), None),
        TypeError,
        "floating",
    ),
    "clamping mask of the wrong shape": (
        lambda: MALA.init(umrf.samplers.Clamped(jnp.zeros(2), jnp.zeros(3, bool)), None),
        ValueError,
        "observed",
    ),
    "clamping mask that is not boolean": (
        lambda: MALA.init(umrf.samplers.Clamped(jnp.zeros(2), jnp.zeros(2)), None),
        ValueError,
        "observed",
    ),
    # annealed Langevin
    "sigmas increase": (
        lambda: umrf.samplers.annealed_langevin(
            scalar_score, sigmas=[0.1, 1.0], steps_per_level=2, eps=0.1
        ),
        ValueError,
        "sigmas",
    ),
    "sigmas are empty": (
        lambda: umrf.samplers.annealed_langevin(
            scalar_score, sigmas=[], steps_per_level=2, eps=0.1
        ),
        ValueError,
        "sigmas",
    ),
    "steps_per_level is zero": (
        lambda: umrf.samplers.annealed_langevin(
            scalar_score, sigmas=[1.0], steps_per_level=0, eps=0.1
        ),
        ValueError,
        "steps_per_level",
    ),
    "score is a scalar": (
        lambda: umrf.sample_chains(
            umrf.samplers.annealed_langevin(scalar_score, sigmas=[1.0], steps_per_level=2, eps=0.1),
            KEY,
            None,
            X0,
            num_steps=1,
        ),
        ValueError,
        "score_fn",
    ),
    # warm-up
    "target_acceptance is zero": (
        lambda: umrf.samplers.mala_warmup(quad, KEY, None, X0, num_steps=5, target_acceptance=0.0),
        ValueError,
        "target_acceptance",
    ),
    "target_acceptance is one": (
        lambda: umrf.samplers.mala_warmup(quad, KEY, None, X0, num_steps=5, target_acceptance=1.0),
        ValueError,
        "target_acceptance",
    ),
    "warm-up length is zero": (
        lambda: umrf.samplers.mala_warmup(quad, KEY, None, X0, num_steps=0),
        ValueError,
        "num_steps",
    ),
    # Gibbs
    "gibbs of a Gaussian": (
        lambda: umrf.samplers.gibbs(umrf.models.Gaussian(jnp.zeros(2), jnp.eye(2))),
        TypeError,
        "mrf_or_model",
    ),
    "evidence outside the states": (
        lambda: umrf.samplers.gibbs(MRF, evidence={1: 3}),
        ValueError,
        "evidence",
    ),
    "evidence on an unknown variable": (
        lambda: umrf.samplers.gibbs(MRF, evidence={5: 0}),
        ValueError,
        "evidence",
    ),
    "lattice evidence is not a spin": (
        lambda: umrf.samplers.gibbs(ISING, evidence={(0, 0): 0}),
        ValueError,
        "evidence",
    ),
    "gibbs position outside the states": (
        lambda: umrf.samplers.gibbs(MRF).init(jnp.array([0, 3]), MRF),
        ValueError,
        "position",
    ),
    "lattice position of zeros": (
        lambda: umrf.samplers.gibbs(ISING).init(jnp.zeros((4, 4), jnp.int8), ISING),
        ValueError,
        "position",
    ),
    "params of another structure": (
        lambda: umrf.samplers.gibbs(ISING).init(
            jnp.ones((4, 4), jnp.int8), umrf.models.ising((6, 6), 0.3)
        ),
        ValueError,
        "params",
    ),
    # negatives and the replay buffer
    "negatives from a non-algorithm": (
        lambda: umrf.samplers.cd_negatives(quad, KEY, None, X0, num_steps=2),
        TypeError,
        "alg",
    ),
    "negatives with zero steps": (
        lambda: umrf.samplers.pcd_negatives(MALA, KEY, None, X0, num_steps=0),
        ValueError,
        "num_steps",
    ),
    "replay buffer of the wrong type": (
        lambda: umrf.samplers.replay_negatives(
            MALA, "buffer", KEY, None, None, batch_size=2, num_steps=2
        ),
        TypeError,
        "buffer",
    ),
    "replay batch of zero": (
        lambda: BUFFER.sample(KEY, BUFFER.init(KEY), batch_size=0),
        ValueError,
        "batch_size",
    ),
    "buffer capacity zero": (
        lambda: umrf.samplers.ReplayBuffer(0, umrf.samplers.uniform_init((2,))),
        ValueError,
        "capacity",
    ),
    "reinit probability above one": (
        lambda: umrf.samplers.ReplayBuffer(8, umrf.samplers.uniform_init((2,)), reinit_prob=1.5),
        ValueError,
        "reinit_prob",
    ),
    "uniform init with high <= low": (
        lambda: umrf.samplers.uniform_init((2,), low=1.0, high=1.0),
        ValueError,
        "high",
    ),
    # diagnostics
    "ESS of one chain without a chain axis": (
        lambda: umrf.samplers.effective_sample_size(jnp.zeros(10)),
        ValueError,
        "samples",
    ),
    "R-hat with too few draws": (
        lambda: umrf.samplers.split_rhat(jnp.zeros((3, 4))),
        ValueError,
        "draws",
    ),
    "ESS with equal axes": (
        lambda: umrf.samplers.effective_sample_size(jnp.zeros((10, 4)), chain_axis=0),
        ValueError,
        "sample_axis",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_raises_a_clear_error(case):
    fn, err, match = CASES[case]
    with pytest.raises(err, match=match):
        fn()


def test_traced_lattice_states_outside_the_model_are_flagged():
    """Inside sample_chains the start cannot be checked before the run: Info says so."""
    alg = umrf.samplers.gibbs(ISING)
    _, trace = umrf.sample_chains(alg, KEY, ISING, jnp.zeros((2, 4, 4), jnp.int8), num_steps=3)
    assert bool(trace.info.diverged[0].all())  # the first sweep saw spins 0
    assert not bool(trace.info.diverged[1:].any())  # a sweep redraws every site: ±1 after it
    _, ok = umrf.sample_chains(alg, KEY, ISING, jnp.ones((2, 4, 4), jnp.int8), num_steps=3)
    assert not bool(ok.info.diverged.any())


def test_traced_mrf_states_outside_the_model_are_flagged():
    alg = umrf.samplers.gibbs(MRF)
    final, trace = umrf.sample_chains(alg, KEY, MRF, jnp.array([[0, 5], [0, 1]]), num_steps=2)
    np.testing.assert_array_equal(np.asarray(trace.info.diverged[0]), [True, False])
    assert np.isnan(float(jax.vmap(alg.init, (0, None))(jnp.array([[0, 5]]), MRF).energy[0]))


def test_diagnostics_of_degenerate_chains_are_nan_not_perfect():
    nan_chains = jnp.full((10, 4), jnp.nan)
    stuck_chains = jnp.ones((10, 4))
    for draws in (nan_chains, stuck_chains):
        assert np.isnan(float(umrf.samplers.effective_sample_size(draws)))
        assert np.isnan(float(umrf.samplers.split_rhat(draws)))
    partly = jnp.stack([jax.random.normal(KEY, (100, 4)), jnp.full((100, 4), jnp.inf)], -1)
    ess = np.asarray(umrf.samplers.effective_sample_size(partly))
    assert np.isfinite(ess[0]) and np.isnan(ess[1])
