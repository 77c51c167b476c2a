"""Chains sharded over 8 CPU devices give exactly the 1-device result for the same key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf


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
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # bitwise
