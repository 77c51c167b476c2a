"""Linear-chain CRF: parallel == sequential, gradients, batching, recompiles, bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from umrf.crf import (
    chain_log_likelihood,
    chain_log_partition,
    chain_marginals,
    chain_sample,
    viterbi,
)


def _batch(seed, B, L, K, forbid=True):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(B, L, K)).astype(np.float32) * 2.0
    A = rng.normal(size=(K, K)).astype(np.float32)
    if forbid:
        A[0, 1] = A[2, 0] = -np.inf
    lengths = rng.integers(1, L + 1, size=B)
    lengths[0] = L
    mask = np.arange(L)[None, :] < lengths[:, None]
    s, f = rng.normal(size=K).astype(np.float32), rng.normal(size=K).astype(np.float32)
    return e, A, mask, s, f


def test_parallel_and_scaled_match_sequential_on_long_batched_sequences():
    B, L, K = 4, 300, 5
    e, A, mask, s, f = _batch(0, B, L, K)

    @jax.jit
    def run(e, A, mask, s, f):
        out = {}
        for method in ("auto", "sequential", "scaled", "parallel"):
            out[method] = jax.vmap(
                lambda e_, m_, method=method: chain_log_partition(e_, A, m_, s, f, method=method)
            )(e, mask)
        out["marg_seq"] = jax.vmap(lambda e_, m_: chain_marginals(e_, A, m_, s, f).nodes)(e, mask)
        out["marg_par"] = jax.vmap(
            lambda e_, m_: chain_marginals(e_, A, m_, s, f, method="parallel").nodes
        )(e, mask)
        for method in ("sequential", "parallel"):
            out["vit_" + method] = jax.vmap(
                lambda e_, m_, method=method: viterbi(e_, A, m_, s, f, method=method)
            )(e, mask)
        return out

    out = run(e, A, mask, s, f)
    np.testing.assert_allclose(out["parallel"], out["sequential"], rtol=2e-5)
    np.testing.assert_allclose(out["auto"], out["sequential"], rtol=2e-5)
    np.testing.assert_allclose(out["scaled"], out["sequential"], rtol=2e-5)
    # float32 over 300 steps: log Z ~ 600 carries ~1e-4 relative rounding into marginals.
    np.testing.assert_allclose(out["marg_par"], out["marg_seq"], atol=1e-3)
    np.testing.assert_array_equal(out["vit_parallel"][0], out["vit_sequential"][0])
    np.testing.assert_allclose(out["vit_parallel"][1], out["vit_sequential"][1], rtol=1e-5)
    # The Viterbi score is the score of the returned path.
    p = np.asarray(out["vit_sequential"][0][1])
    n = int(mask[1].sum())
    ref = s[p[0]] + e[1, np.arange(n), p[:n]].sum() + A[p[: n - 1], p[1:n]].sum() + f[p[n - 1]]
    np.testing.assert_allclose(out["vit_sequential"][1][1], ref, rtol=1e-5)


def test_vmap_with_masks_equals_one_sequence_at_a_time():
    B, L, K = 3, 7, 4
    e, A, mask, s, f = _batch(1, B, L, K)
    tags = np.random.default_rng(2).integers(0, K, size=(B, L)).astype(np.int32)
    tags[:, 1:] = tags[:, :1]  # constant sequences avoid the forbidden moves
    batched = jax.jit(jax.vmap(chain_log_likelihood, (0, None, 0, 0, None, None)))(
        e, A, tags, mask, s, f
    )
    for b in range(B):
        n = int(mask[b].sum())
        single = chain_log_likelihood(e[b, :n], A, tags[b, :n], None, s, f)
        np.testing.assert_allclose(batched[b], single, rtol=1e-5, atol=1e-5)


def test_gradients_match_finite_differences_float64():
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        L, K = 5, 3
        e = rng.normal(size=(L, K))
        A = rng.normal(size=(K, K))
        s, f = rng.normal(size=K), rng.normal(size=K)
        tags = jnp.array([0, 2, 1, 1, 0])
        mask = jnp.array([True, True, True, True, False])
        for method in ("auto", "sequential", "scaled", "parallel"):

            @jax.jit
            def fn(e, A, s, f, method=method):
                return chain_log_likelihood(e, A, tags, mask, s, f, method=method)

            check_grads(fn, (e, A, s, f), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)
            # Gradient of log Z w.r.t. emissions = node marginals (sum to one per valid row).
            g = jax.jit(jax.grad(chain_log_partition), static_argnames="method")(
                e, A, mask, s, f, method=method
            )
            np.testing.assert_allclose(g.sum(-1), [1, 1, 1, 1, 0], atol=1e-12)


def test_no_recompile_on_new_params():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def loss(e, A, tags, mask, s, f):
        ll = jax.vmap(chain_log_likelihood, (0, None, 0, 0, None, None))(e, A, tags, mask, s, f)
        path, _ = jax.vmap(viterbi, (0, None, 0, None, None))(e, A, mask, s, f)
        return -ll.mean(), path

    B, L, K = 3, 6, 4
    tags = jnp.zeros((B, L), jnp.int32)
    for seed in range(3):
        e, A, mask, s, f = _batch(seed, B, L, K, forbid=False)
        loss(e, A, tags, mask, s, f)


def test_samples_follow_mask_and_jit():
    e, A, mask, s, f = _batch(4, 1, 6, 3)
    m = mask[0].copy()
    m[4:] = False
    y = jax.jit(chain_sample)(jax.random.key(0), e[0], A, m, s, f)
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(y)[4:], -1)
    assert np.all((np.asarray(y)[:4] >= 0) & (np.asarray(y)[:4] < 3))


E3, A3 = jnp.zeros((4, 3)), jnp.zeros((3, 3))


@pytest.mark.parametrize(
    "call,err,match",
    [
        (lambda: chain_log_likelihood(E3, A3, jnp.array([0, 1, 3, 0])), ValueError, "tags"),
        (lambda: chain_log_likelihood(E3, A3, jnp.array([0, -1, 0, 0])), ValueError, "tags"),
        (lambda: chain_log_likelihood(E3, A3, jnp.zeros(4)), TypeError, "integer"),
        (lambda: chain_log_likelihood(E3, A3, jnp.zeros(3, int)), ValueError, "shape"),
        (lambda: chain_log_partition(E3, A3, jnp.array([1, 0, 1, 0], bool)), ValueError, "prefix"),
        (lambda: chain_log_partition(E3, A3, jnp.array([0, 0, 0, 0], bool)), ValueError, "mask"),
        (lambda: chain_log_partition(E3, A3, jnp.ones(5, bool)), ValueError, "mask"),
        (lambda: chain_log_partition(E3, jnp.zeros((2, 2))), ValueError, "transitions"),
        (lambda: chain_log_partition(E3[0], A3), ValueError, "emissions"),
        (lambda: chain_log_partition(E3, A3, start=jnp.zeros(2)), ValueError, "start"),
        (lambda: chain_log_partition(E3.at[1, 1].set(jnp.nan), A3), ValueError, "emissions"),
        (lambda: chain_log_partition(E3, A3.at[0, 0].set(jnp.inf)), ValueError, "transitions"),
        (lambda: chain_log_partition(E3, A3, method="fast"), ValueError, "method"),
        (lambda: viterbi(E3, A3, method="scaled"), ValueError, "method"),
    ],
)
def test_bad_input_raises_clear_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_padding_tags_outside_range_are_ignored():
    ll = chain_log_likelihood(E3, A3, jnp.array([0, 1, -100, 99]), jnp.array([1, 1, 0, 0], bool))
    np.testing.assert_allclose(ll, -2 * np.log(3), rtol=1e-6)
