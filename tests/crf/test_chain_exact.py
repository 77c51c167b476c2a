"""Linear-chain CRF vs brute-force enumeration over all label sequences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from umrf.crf import (
    chain_log_likelihood,
    chain_log_partition,
    chain_marginals,
    chain_sample,
    chain_score,
    viterbi,
)

# Jitted once per shape and method, so the cases below share compilations
# (the eager calls with validation are exercised in test_chain_api.py).
LOGZ = jax.jit(chain_log_partition, static_argnames="method")
LL = jax.jit(chain_log_likelihood, static_argnames="method")
MARG = jax.jit(chain_marginals, static_argnames="method")
VIT = jax.jit(viterbi, static_argnames="method")

# (L, K, valid length n, number of -inf transitions, start/end scores)
CASES = [
    (1, 4, 1, 0, True),  # length one: log Z = logsumexp(s + e_0 + f)
    (5, 3, 5, 0, True),
    (5, 3, 3, 2, True),  # mask + forbidden moves
    (5, 3, 1, 2, True),  # only the first position valid
    (5, 3, 5, 3, False),  # default (zero) start/end
]


def _mask(L, n):
    return np.arange(L) < n


@pytest.mark.parametrize("method", ["auto", "sequential", "scaled", "parallel"])
@pytest.mark.parametrize("L,K,n,forbid,ends", CASES)
def test_log_partition_and_likelihood_match_enumeration(
    brute, problem, method, L, K, n, forbid, ends
):
    e, A, s, f = problem(L * 10 + K, L, K, forbid=forbid, with_ends=ends)
    mask = _mask(L, n)
    seqs, scores, log_z = brute(e, A, mask, s, f)
    got = LOGZ(e, A, mask, s, f, method=method)
    np.testing.assert_allclose(got, log_z, rtol=1e-5, atol=1e-5)
    rng = np.random.default_rng(0)
    for idx in rng.choice(len(seqs), size=min(5, len(seqs)), replace=False):
        tags = np.zeros(L, np.int32)
        tags[:n] = seqs[idx]
        tags[n:] = 7  # padding values are ignored
        ll = LL(e, A, tags, mask, s, f, method=method)
        if np.isfinite(scores[idx]):
            np.testing.assert_allclose(ll, scores[idx] - log_z, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(
                chain_score(e, A, tags, mask, s, f), scores[idx], rtol=1e-5, atol=1e-5
            )
        else:
            assert ll == -np.inf


@pytest.mark.parametrize("method", ["auto", "sequential", "scaled", "parallel"])
@pytest.mark.parametrize("L,K,n,forbid,ends", CASES)
def test_marginals_match_enumeration(brute_marg, problem, method, L, K, n, forbid, ends):
    e, A, s, f = problem(L * 10 + K + 1, L, K, forbid=forbid, with_ends=ends)
    mask = _mask(L, n)
    nodes, pairs = brute_marg(e, A, mask, s, f)
    got = MARG(e, A, mask, s, f, method=method)
    assert got.nodes.shape == (L, K) and got.pairs.shape == (L - 1, K, K)
    assert np.all(np.isfinite(got.nodes)) and np.all(np.isfinite(got.pairs))
    np.testing.assert_allclose(got.nodes, nodes, atol=2e-5)
    np.testing.assert_allclose(got.pairs, pairs, atol=2e-5)
    # Padded positions: zero rows / tables; forbidden moves: exactly zero mass.
    assert np.all(np.asarray(got.nodes)[n:] == 0)
    assert np.all(np.asarray(got.pairs)[max(n - 1, 0) :] == 0)
    assert np.all(np.asarray(got.pairs)[:, ~np.isfinite(A)] == 0)


@pytest.mark.parametrize("method", ["sequential", "parallel"])
@pytest.mark.parametrize("L,K,n,forbid,ends", CASES)
def test_viterbi_matches_enumeration(brute, problem, method, L, K, n, forbid, ends):
    e, A, s, f = problem(L * 10 + K + 2, L, K, forbid=forbid, with_ends=ends)
    mask = _mask(L, n)
    seqs, scores, _ = brute(e, A, mask, s, f)
    best = int(np.argmax(scores))
    path, score = VIT(e, A, mask, s, f, method=method)
    assert path.dtype == jnp.int32
    np.testing.assert_array_equal(path[:n], seqs[best])
    np.testing.assert_array_equal(path[n:], -1)
    np.testing.assert_allclose(score, scores[best], rtol=1e-5, atol=1e-5)


def test_sampling_frequencies_match_enumeration(brute, problem):
    L, K, n = 4, 3, 3
    e, A, s, f = problem(3, L, K, forbid=2)
    mask = _mask(L, n)
    seqs, scores, log_z = brute(e, A, mask, s, f)
    p = np.exp(scores - log_z)
    num = 40_000
    keys = jax.random.split(jax.random.key(0), num)
    samples = jax.jit(jax.vmap(lambda k: chain_sample(k, e, A, mask, s, f)))(keys)
    samples = np.asarray(samples)
    assert np.all(samples[:, n:] == -1)
    codes = samples[:, :n] @ (K ** np.arange(n - 1, -1, -1))
    freq = np.bincount(codes, minlength=K**n) / num
    ref = np.zeros(K**n)
    for y, w in zip(seqs, p, strict=True):
        ref[int(np.dot(y, K ** np.arange(n - 1, -1, -1)))] = w
    assert np.all(freq[ref == 0] == 0)  # forbidden sequences are never drawn
    # 40k draws: per-cell standard error <= 0.0025, total variation well under 0.02.
    assert 0.5 * np.abs(freq - ref).sum() < 0.02
    np.testing.assert_allclose(freq, ref, atol=0.012)


def test_length_one_closed_form():
    e = jnp.array([[0.3, -1.0, 2.0]])
    s = jnp.array([0.1, 0.2, -0.5])
    f = jnp.array([1.0, 0.0, 0.0])
    A = jnp.full((3, 3), 5.0)  # never used for L = 1
    ref = jax.nn.logsumexp(e[0] + s + f)
    np.testing.assert_allclose(chain_log_partition(e, A, None, s, f), ref, rtol=1e-6)
    path, score = viterbi(e, A, None, s, f)
    np.testing.assert_array_equal(path, [2])
    np.testing.assert_allclose(score, 1.5, rtol=1e-6)
    m = chain_marginals(e, A, None, s, f)
    np.testing.assert_allclose(m.nodes[0], jax.nn.softmax(e[0] + s + f), rtol=1e-5)
    assert m.pairs.shape == (0, 3, 3)


def test_forbidden_moves_without_nan():
    # Label 2 can only be followed by 0, and label 0 can never follow 1.
    K = 3
    A = jnp.zeros((K, K)).at[2, 1].set(-jnp.inf).at[2, 2].set(-jnp.inf).at[1, 0].set(-jnp.inf)
    e = jax.random.normal(jax.random.key(1), (6, K))
    tags_bad = jnp.array([2, 2, 0, 0, 1, 1])
    tags_ok = jnp.array([2, 0, 0, 1, 1, 1])
    assert LL(e, A, tags_bad, method="sequential") == -jnp.inf
    assert jnp.isfinite(LL(e, A, tags_ok, method="sequential"))
    grad = jax.jit(jax.grad(chain_log_likelihood, argnums=(0, 1)), static_argnames="method")
    for method in ("auto", "sequential", "scaled", "parallel"):
        g = grad(e, A, tags_ok, method=method)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in g)
        # d log p / dA at forbidden moves is -E[count] = 0.
        np.testing.assert_array_equal(np.asarray(g[1])[~np.isfinite(np.asarray(A))], 0.0)
    path, _ = VIT(e, A, method="sequential")
    moves = np.asarray(A)[np.asarray(path)[:-1], np.asarray(path)[1:]]
    assert np.all(np.isfinite(moves))


def test_unreachable_label_gives_zero_marginal_and_finite_gradients():
    # Column 1 all -inf: label 1 can never appear after position 0.
    A = jnp.zeros((3, 3)).at[:, 1].set(-jnp.inf)
    e = jax.random.normal(jax.random.key(2), (5, 3))
    m = MARG(e, A, method="sequential")
    assert bool(jnp.all(jnp.isfinite(m.nodes))) and bool(jnp.all(jnp.isfinite(m.pairs)))
    np.testing.assert_array_equal(m.nodes[1:, 1], 0.0)
    grad = jax.jit(jax.grad(chain_log_partition, argnums=(0, 1)), static_argnames="method")
    for method in ("auto", "sequential", "parallel"):
        g = grad(e, A, method=method)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in g)


def test_everything_forbidden_is_minus_inf():
    e = jnp.zeros((3, 2))
    A = jnp.full((2, 2), -jnp.inf)
    for method in ("auto", "sequential", "scaled", "parallel"):
        assert LOGZ(e, A, method=method) == -jnp.inf
    assert VIT(e, A, method="sequential")[1] == -jnp.inf
