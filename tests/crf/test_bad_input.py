"""Bad input to the CRFs: a clear error naming the argument, NaN under tracing, no hangs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from umrf import crf

E, A = jnp.zeros((4, 3)), jnp.zeros((3, 3))
TAGS = jnp.array([0, 1, 2, 0])
Z = jnp.zeros((6, 6, 3))
IMG = jnp.zeros((6, 6, 3))
MU = crf.potts_compatibility(3)
K = crf.GridKernels()

CASES = {
    "emissions of one axis": (
        lambda: crf.chain_log_partition(jnp.zeros(4), A),
        ValueError,
        "emissions",
    ),
    "transitions of the wrong shape": (
        lambda: crf.chain_log_partition(E, jnp.zeros((2, 2))),
        ValueError,
        "transitions",
    ),
    "NaN emissions": (
        lambda: crf.chain_log_partition(E.at[0, 0].set(jnp.nan), A),
        ValueError,
        "emissions",
    ),
    "+inf transitions": (
        lambda: crf.chain_log_partition(E, A.at[0, 0].set(jnp.inf)),
        ValueError,
        "transitions",
    ),
    "mask that is not a prefix": (
        lambda: crf.chain_log_partition(E, A, jnp.array([True, False, True, True])),
        ValueError,
        "prefix",
    ),
    "mask with no valid position": (
        lambda: crf.chain_log_partition(E, A, jnp.zeros(4, bool)),
        ValueError,
        "mask",
    ),
    "tags out of range": (
        lambda: crf.chain_log_likelihood(E, A, jnp.array([0, 3, 0, 0])),
        ValueError,
        "tags",
    ),
    "negative tag": (
        lambda: crf.chain_log_likelihood(E, A, jnp.array([0, -1, 0, 0])),
        ValueError,
        "tags",
    ),
    "float tags": (lambda: crf.chain_log_likelihood(E, A, jnp.zeros(4)), TypeError, "tags"),
    "start of the wrong shape": (
        lambda: crf.chain_log_partition(E, A, None, jnp.zeros(2)),
        ValueError,
        "start",
    ),
    "unknown method": (
        lambda: crf.chain_log_partition(E, A, method="fast"),
        ValueError,
        "method",
    ),
    "viterbi with the associative scan of the wrong name": (
        lambda: crf.viterbi(E, A, method="scaled"),
        ValueError,
        "method",
    ),
    # grid CRF
    "window radius beyond the image": (
        lambda: crf.grid_mean_field(Z, MU, K, IMG, num_iters=2, radius=50),
        ValueError,
        "radius",
    ),
    "negative iterations": (
        lambda: crf.grid_mean_field(Z, MU, K, IMG, num_iters=-1),
        ValueError,
        "num_iters",
    ),
    "compatibility of the wrong shape": (
        lambda: crf.grid_mean_field(Z, jnp.eye(2), K, IMG),
        ValueError,
        "compatibility",
    ),
    "kernels of the wrong type": (
        lambda: crf.grid_mean_field(Z, MU, (1.0, 1.0), IMG),
        TypeError,
        "kernels",
    ),
    "zero bandwidth": (
        lambda: crf.grid_mean_field(Z, MU, K._replace(spatial_bandwidth=0.0), IMG),
        ValueError,
        "spatial_bandwidth",
    ),
    "image of another size": (
        lambda: crf.grid_mean_field(Z, MU, K, jnp.zeros((5, 5, 3))),
        ValueError,
        "image",
    ),
    "grid labels out of range": (
        lambda: crf.grid_crf_energy(Z, MU, K, IMG, jnp.full((6, 6), 3)),
        ValueError,
        "labels",
    ),
    "grid labels of the wrong shape": (
        lambda: crf.grid_crf_energy(Z, MU, K, IMG, jnp.zeros((5, 5), jnp.int32)),
        ValueError,
        "labels",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_raises_a_clear_error(case):
    fn, err, match = CASES[case]
    with pytest.raises(err, match=match):
        fn()


def test_traced_contract_violations_give_nan():
    """Under jit, tags and masks cannot be checked first: the answer is NaN, never a number."""
    ll = jax.jit(crf.chain_log_likelihood)
    assert np.isnan(float(ll(E, A, jnp.array([0, 3, 0, 0]))))
    assert np.isnan(float(ll(E, A, TAGS, jnp.array([True, False, True, True]))))
    assert np.isfinite(float(ll(E, A, TAGS)))
    logz = jax.jit(crf.chain_log_partition)
    assert np.isnan(float(logz(E, A, jnp.array([False, True, True, True]))))
    m = jax.jit(crf.chain_marginals)(E, A, jnp.array([True, False, True, True]))
    assert np.isnan(np.asarray(m.nodes)).all()
    energy = jax.jit(crf.grid_crf_energy)(Z, MU, K, IMG, jnp.full((6, 6), 5))
    assert np.isnan(float(energy))


def test_batched_loss_flags_only_the_bad_sequence():
    e = jnp.zeros((2, 4, 3))
    tags = jnp.stack([TAGS, jnp.array([0, 9, 0, 0])])
    per_seq = jax.jit(jax.vmap(crf.chain_log_likelihood, (0, None, 0)))(e, A, tags)
    assert np.isfinite(float(per_seq[0])) and np.isnan(float(per_seq[1]))
