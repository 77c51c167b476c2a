"""Chains sharded over 8 CPU devices: what umrf promises for the same key, and no more.

The random draws are bitwise identical for every layout (tested on a probe
algorithm whose position IS its step's random bits). Discrete (Gibbs) states are
bitwise equal. Floating-point positions agree to rounding: XLA may vectorise a
per-device batch of 4 chains differently from a batch of 32 (e.g. with AVX-512),
so they are compared with a stated tolerance, never bitwise.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.models import DiscreteMRF, Factor

# Positions after tens of float32 steps: a few hundred ulps of rounding.
FLOAT_RTOL = FLOAT_ATOL = 1e-5


class ProbeState(NamedTuple):
    position: jax.Array


class ProbeInfo(NamedTuple):
    acceptance_rate: jax.Array
    diverged: jax.Array


def probe_init(x, params):
    return ProbeState(jnp.zeros(4, jnp.uint32))


def probe_step(key, state, params):
    """The step's random bits, as integers: comparable bitwise on any CPU."""
    return ProbeState(jax.random.bits(key, (4,), jnp.uint32)), ProbeInfo(
        jnp.ones(()), jnp.zeros((), bool)
    )


KEY_PROBE = umrf.samplers.SamplingAlgorithm(probe_init, probe_step)


def energy(m, x):
    return m.energy(x)


@pytest.fixture(scope="module")
def model():
    cov = jnp.array([[1.0, 0.6, 0.0], [0.6, 2.0, 0.3], [0.0, 0.3, 0.5]])
    return umrf.models.Gaussian.from_covariance(jnp.array([1.0, -1.0, 0.0]), cov)


def test_mesh_helpers():
    mesh = umrf.sharding.chains_mesh()
    assert mesh.axis_names == ("chains",) and mesh.shape["chains"] == len(jax.devices()) == 8
    x = umrf.sharding.shard_chains(jnp.arange(16.0).reshape(8, 2), mesh)
    assert x.sharding.spec == umrf.sharding.chains_sharding(mesh).spec
    assert len(x.addressable_shards) == 8
    np.testing.assert_array_equal(umrf.sharding.local_chains(x), np.arange(16.0).reshape(8, 2))
    g = umrf.sharding.global_chains(np.ones((8, 3), np.float32), mesh)
    assert g.shape == (8, 3) and len(g.sharding.device_set) == 8
    small = umrf.sharding.chains_mesh(jax.devices()[:2])
    assert small.shape["chains"] == 2
    with pytest.raises(ValueError, match="devices"):
        umrf.sharding.chains_mesh([])
    with pytest.raises(TypeError, match="devices"):
        umrf.sharding.chains_mesh(["cpu:0"])


@pytest.mark.parametrize("kind", ["mala", "annealed"])
def test_sharded_run_equals_one_device_run(model, kind):
    if kind == "mala":
        alg = umrf.samplers.mala(energy, step_size=0.3)
        steps, thin = 40, 4
    else:
        alg = umrf.samplers.annealed_langevin(
            lambda m, x, s: -jax.grad(m.energy)(x) / (1 + s**2),
            sigmas=[2.0, 1.0],
            steps_per_level=5,
            eps=0.05,
        )
        steps, thin = 2, 1
    x0 = jax.random.normal(jax.random.key(0), (32, 3))
    key = jax.random.key(42)
    mesh = umrf.sharding.chains_mesh()
    single = umrf.sample_chains(alg, key, model, x0, num_steps=steps, thin=thin)
    sharded = umrf.sample_chains(alg, key, model, x0, num_steps=steps, thin=thin, mesh=mesh)
    assert sharded[1].position.sharding.spec == jax.sharding.PartitionSpec(None, "chains")
    assert len(sharded[0].position.sharding.device_set) == 8
    for a, b in zip(
        jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(sharded), strict=True
    ):
        a, b = np.asarray(a), np.asarray(b)
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
        else:
            np.testing.assert_array_equal(a, b)  # accept flags: bitwise


def test_random_draws_are_bitwise_identical_across_layouts():
    """Same key: identical bits per (chain, step) on 1 device, 8 devices, 2 devices, in chunks."""
    x0 = jnp.zeros((16, 1))
    key = jax.random.key(3)
    _, ref = umrf.sample_chains(KEY_PROBE, key, None, x0, num_steps=12)
    layouts = {
        "8 devices": dict(mesh=umrf.sharding.chains_mesh()),
        "2 devices": dict(mesh=umrf.sharding.chains_mesh(jax.devices()[:2])),
        "chunked": dict(progress=5),
    }
    for name, kw in layouts.items():
        _, trace = umrf.sample_chains(KEY_PROBE, key, None, x0, num_steps=12, **kw)
        np.testing.assert_array_equal(np.asarray(trace.position), np.asarray(ref.position), name)
    # and the draws are the documented schedule: fold_in(split(key, C)[c], t)
    c, t = 5, 7
    want = jax.random.bits(jax.random.fold_in(jax.random.split(key, 16)[c], t), (4,), jnp.uint32)
    np.testing.assert_array_equal(np.asarray(ref.position[t, c]), np.asarray(want))


def loopy_mrf():
    rng = np.random.default_rng(0)
    scopes = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]
    return DiscreteMRF(
        [2, 3, 2, 2],
        [
            Factor(s, jnp.asarray(rng.normal(size=[[2, 3, 2, 2][v] for v in s]), jnp.float32))
            for s in scopes
        ],
    )


@pytest.mark.parametrize("kind", ["ising", "potts", "discrete_mrf"])
def test_gibbs_states_are_bitwise_equal_across_layouts(kind):
    if kind == "ising":
        model = umrf.models.ising((8, 8), 0.4, 0.1)
        x0 = jnp.ones((16, 8, 8), jnp.int8)
    elif kind == "potts":
        model = umrf.models.potts((6, 6), 3, 0.8)
        x0 = jnp.zeros((16, 6, 6), jnp.int8)
    else:
        model = loopy_mrf()
        x0 = jnp.zeros((16, 4), jnp.int32)
    alg = umrf.samplers.gibbs(model)
    key = jax.random.key(11)
    single = umrf.sample_chains(alg, key, model, x0, num_steps=10, thin=2)
    sharded = umrf.sample_chains(
        alg, key, model, x0, num_steps=10, thin=2, mesh=umrf.sharding.chains_mesh()
    )
    np.testing.assert_array_equal(np.asarray(single[1].position), np.asarray(sharded[1].position))
    np.testing.assert_array_equal(np.asarray(single[0].position), np.asarray(sharded[0].position))
