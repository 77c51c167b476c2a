"""Brute-force enumeration, the tests' oracle, checked against energies."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from umrf.inference import enumerate_joint, unnormalized_log_joint
from umrf.models import DiscreteMRF, Factor


def model():
    rng = np.random.default_rng(4)
    cards = (2, 3, 1, 2)
    scopes = [(0, 1), (1, 3), (3, 0, 2), (2,), ()]
    return DiscreteMRF(
        cards, [Factor(s, rng.normal(size=tuple(cards[v] for v in s))) for s in scopes]
    )


def test_joint_is_exp_minus_energy_over_z():
    mrf = model()
    xs = jnp.asarray(list(itertools.product(*(range(k) for k in mrf.cardinalities))))
    e = np.asarray(jax.vmap(mrf.energy)(xs), np.float64)
    want = np.exp(-e - np.log(np.exp(-e).sum())).reshape(mrf.cardinalities)
    p = np.asarray(enumerate_joint(mrf))
    assert p.shape == mrf.cardinalities
    np.testing.assert_allclose(p, want, rtol=1e-5)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(enumerate_joint(mrf, log=True)), np.log(want), rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(unnormalized_log_joint(mrf)), -e.reshape(mrf.cardinalities), rtol=1e-5
    )


def test_hard_zeros_and_zero_partition_function():
    mrf = DiscreteMRF([2, 2], [Factor.from_potential((0, 1), [[1.0, 0.0], [0.0, 3.0]])])
    np.testing.assert_allclose(np.asarray(enumerate_joint(mrf)), [[0.25, 0.0], [0.0, 0.75]])
    dead = DiscreteMRF([2], [Factor((0,), [-np.inf, -np.inf])])
    np.testing.assert_array_equal(np.asarray(enumerate_joint(dead)), [0.0, 0.0])
    assert np.all(np.isneginf(np.asarray(enumerate_joint(dead, log=True))))


def test_jit_and_size_guard():
    mrf = model()
    np.testing.assert_allclose(
        np.asarray(jax.jit(enumerate_joint)(mrf)), np.asarray(enumerate_joint(mrf)), rtol=1e-6
    )
    big = DiscreteMRF([2] * 30, [])
    with pytest.raises(ValueError, match="max_table_size"):
        enumerate_joint(big)
    with pytest.raises(TypeError, match="DiscreteMRF"):
        enumerate_joint(np.zeros(3))
