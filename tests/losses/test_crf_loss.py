"""CRF negative log-likelihood loss: batch mean, gradients, training, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from umrf.crf import chain_log_likelihood
from umrf.losses import crf_negative_log_likelihood


def _data(seed=0, B=4, L=6, K=3):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(B, L, K)).astype(np.float32)
    A = rng.normal(size=(K, K)).astype(np.float32)
    tags = rng.integers(0, K, size=(B, L)).astype(np.int32)
    lengths = np.array([L, 3, 1, 5])[:B]
    mask = np.arange(L)[None, :] < lengths[:, None]
    return e, A, tags, mask


def test_loss_is_mean_of_per_sequence_negative_log_likelihoods():
    e, A, tags, mask = _data()
    loss = crf_negative_log_likelihood(e, A, tags, mask)
    ref = -np.mean([chain_log_likelihood(e[b], A, tags[b], mask[b]) for b in range(e.shape[0])])
    np.testing.assert_allclose(loss, ref, rtol=1e-6)
    # Closed form with zero scores: every sequence of length n has probability K**-n.
    zero = crf_negative_log_likelihood(np.zeros_like(e), np.zeros_like(A), tags, mask)
    np.testing.assert_allclose(zero, np.mean(mask.sum(1)) * np.log(3), rtol=1e-6)


def test_gradient_is_observed_minus_expected_counts_and_training_fits_transitions():
    # Data from a deterministic cycle 0 -> 1 -> 2 -> 0 with uninformative emissions:
    # the maximum-likelihood transitions must put almost all mass on the cycle.
    B, L, K = 8, 10, 3
    tags = (np.arange(L)[None, :] + np.arange(B)[:, None]) % K
    e = jnp.zeros((B, L, K))
    params = {"A": jnp.zeros((K, K)), "start": jnp.zeros(K)}
    opt = optax.adam(0.3)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        def loss_fn(p):
            return crf_negative_log_likelihood(e, p["A"], tags, start=p["start"])

        loss, g = jax.value_and_grad(loss_fn)(params)
        updates, state = opt.update(g, state)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for _ in range(60):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert losses[-1] < 0.1 * losses[0]
    pred = np.argmax(np.asarray(params["A"]), axis=1)
    np.testing.assert_array_equal(pred, [1, 2, 0])


def test_return_info_flags_non_finite_loss():
    e, A, tags, mask = _data()
    A = A.copy()
    A[tags[0, 0], tags[0, 1]] = -np.inf  # the first gold sequence becomes impossible
    loss, info = crf_negative_log_likelihood(e, A, tags, mask, return_info=True)
    assert loss == np.inf
    uses = [
        any(tags[b, t - 1] == tags[0, 0] and tags[b, t] == tags[0, 1] for t in range(1, n))
        for b, n in enumerate(mask.sum(1))
    ]
    assert not bool(info.is_finite) and int(info.num_nonfinite) == sum(uses) >= 1


@pytest.mark.parametrize(
    "change,err,match",
    [
        ({"tags": np.full((4, 6), 3, np.int32)}, ValueError, "tags"),
        ({"mask": np.array([[1, 0, 1, 1, 1, 1]] * 4, bool)}, ValueError, "prefix"),
        ({"emissions": np.zeros((6, 3), np.float32)}, ValueError, "emissions"),
        ({"tags": np.zeros((4, 5), np.int32)}, ValueError, "tags"),
        ({"transitions": np.zeros((2, 2), np.float32)}, ValueError, "transitions"),
        ({"tags": np.zeros((4, 6), np.float32)}, TypeError, "integer"),
    ],
)
def test_bad_input(change, err, match):
    e, A, tags, mask = _data()
    args = {"emissions": e, "transitions": A, "tags": tags, "mask": mask} | change
    with pytest.raises(err, match=match):
        crf_negative_log_likelihood(**args)
