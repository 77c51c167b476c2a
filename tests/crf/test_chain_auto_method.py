"""The default ``method="auto"``: fast scaled recursion, exact by its guard.

Cases where the unguarded ``"scaled"`` recursion is wrong (value or gradient)
show that the guard trips and the log-space answer is returned, alone, under
``jit``, ``vmap`` (one decision per batch) and nested ``vmap``; a property
test over score scales up to thousands of nats checks ``auto == sequential``
for values and gradients.
"""

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings

from umrf.crf import chain_log_likelihood, chain_log_partition, chain_marginals
from umrf.crf._forward import log_partition_guarded

LOGZ = jax.jit(chain_log_partition, static_argnames="method")
GRAD = jax.jit(jax.grad(chain_log_partition, argnums=(0, 1)), static_argnames="method")
BATCH_LOGZ = jax.jit(
    jax.vmap(
        lambda e, A, m, method: chain_log_partition(e, A, m, method=method), (0, None, 0, None)
    ),
    static_argnums=3,
)


def _trusted(e, A, mask=None):
    L, K = e.shape
    mask = jnp.ones((L,), bool) if mask is None else mask
    return bool(log_partition_guarded(e, A, mask, jnp.zeros(K), jnp.zeros(K))[1])


def _underflow_case():
    """Label 1 starts 100 nats behind but is the only label with successors.

    The scaled recursion flushes its weight ``e^-100`` to zero in float32 and
    returns ``-inf``; the true ``log Z = -100 + log 2``.
    """
    e = jnp.array([[0.0, -100.0], [0.0, 0.0]])
    A = jnp.array([[-jnp.inf, -jnp.inf], [0.0, 0.0]])
    return e, A, -100.0 + np.log(2.0)


def test_guard_catches_underflow_that_breaks_the_scaled_recursion():
    e, A, truth = _underflow_case()
    assert LOGZ(e, A, method="scaled") == -jnp.inf  # the failure the guard exists for
    assert not _trusted(e, A)
    np.testing.assert_allclose(LOGZ(e, A, method="auto"), truth, rtol=1e-6)
    np.testing.assert_allclose(chain_log_partition(e, A), truth, rtol=1e-6)  # eager default


def test_batch_with_one_untrusted_sequence_matches_sequential():
    rng = np.random.default_rng(0)
    B, L, K = 6, 7, 2
    e = jnp.asarray(rng.normal(size=(B, L, K)), jnp.float32)
    bad, A, truth = _underflow_case()
    e = e.at[2, :2].set(bad)
    A = A.at[0, 0].set(0.0)  # label 0 may repeat; it still cannot reach label 1
    e = e.at[2, 2:, 1].set(0.0).at[2, 2:, 0].set(-jnp.inf)  # after step 1 only label 1
    mask = jnp.ones((B, L), bool)
    auto = BATCH_LOGZ(e, A, mask, "auto")
    seq = BATCH_LOGZ(e, A, mask, "sequential")
    scaled = BATCH_LOGZ(e, A, mask, "scaled")
    assert not np.allclose(scaled[2], seq[2])  # the unguarded recursion is wrong here
    np.testing.assert_allclose(auto, seq, rtol=1e-6)
    nested = jax.vmap(jax.vmap(lambda e_, m_: chain_log_partition(e_, A, m_)))(
        e.reshape(2, 3, L, K), mask.reshape(2, 3, L)
    )
    np.testing.assert_allclose(nested.reshape(-1), seq, rtol=1e-6)


def test_gradients_match_log_space_and_hessian_is_exact():
    """First derivatives through the guarded recursion; second ones from log space."""
    rng = np.random.default_rng(1)
    B, L, K = 4, 9, 3
    e = jnp.asarray(rng.normal(size=(B, L, K)), jnp.float32)
    A = jnp.asarray(rng.normal(size=(K, K)), jnp.float32).at[0, 2].set(-jnp.inf)
    tags = jnp.asarray(rng.integers(0, K, size=(B, L)))
    mask = jnp.asarray(np.arange(L)[None] < np.array([[L], [4], [1], [7]]))

    def loss(e, A, method):
        ll = jax.vmap(lambda e_, y_, m_: chain_log_likelihood(e_, A, y_, m_, method=method))
        return -jnp.mean(ll(e, tags, mask))

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)
    for g_auto, g_seq in zip(grad(e, A, "auto"), grad(e, A, "sequential"), strict=True):
        np.testing.assert_allclose(g_auto, g_seq, atol=2e-6)
        assert np.isfinite(np.asarray(g_auto)).all()
    hess = jax.hessian(lambda s: chain_log_partition(e[0], A, start=s))(jnp.zeros(K))
    hess_seq = jax.hessian(lambda s: chain_log_partition(e[0], A, start=s, method="sequential"))(
        jnp.zeros(K)
    )
    np.testing.assert_allclose(hess, hess_seq, atol=1e-6)
    m_auto = chain_marginals(e[0], A)
    m_seq = chain_marginals(e[0], A, method="sequential")
    np.testing.assert_allclose(m_auto.nodes, m_seq.nodes, atol=1e-6)


def test_gradient_of_a_batch_with_an_untrusted_sequence_falls_back():
    """The batch's gradient rows come from log space where the guard trips."""
    bad, A, _ = _underflow_case()
    rng = np.random.default_rng(3)
    e = jnp.asarray(rng.normal(size=(3, 2, 2)), jnp.float32).at[1].set(bad)

    def total(e, method):
        return jnp.sum(jax.vmap(lambda e_: chain_log_partition(e_, A, method=method))(e))

    grad = jax.jit(jax.grad(total), static_argnums=1)
    g_auto, g_seq, g_scaled = grad(e, "auto"), grad(e, "sequential"), grad(e, "scaled")
    assert not np.allclose(g_scaled[1], g_seq[1])  # the unguarded gradient is wrong there
    np.testing.assert_allclose(g_auto, g_seq, atol=1e-6)
    # Alone (no vmap) the same fallback happens through lax.cond.
    np.testing.assert_allclose(
        jax.grad(chain_log_partition)(bad, A),
        jax.grad(chain_log_partition)(bad, A, method="sequential"),
        atol=1e-6,
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([1.0, 10.0, 40.0, 120.0, 2000.0]),
    forbid=st.floats(0.0, 0.4),
    x64=st.booleans(),
)
def test_auto_equals_sequential_at_any_score_scale(seed, scale, forbid, x64):
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        rng = np.random.default_rng(seed)
        L, K = 12, 4
        e = scale * rng.normal(size=(L, K))
        A = scale * rng.normal(size=(K, K))
        e[rng.random((L, K)) < forbid / 2] = -np.inf
        A[rng.random((K, K)) < forbid] = -np.inf
        e, A = jnp.asarray(e, dtype), jnp.asarray(A, dtype)
        seq = LOGZ(e, A, method="sequential")
        auto = LOGZ(e, A, method="auto")
        if np.isneginf(seq):
            assert np.isneginf(auto)
        else:
            tol = (2e-6 if x64 else 2e-5) * max(1.0, abs(float(seq)))
            np.testing.assert_allclose(auto, seq, atol=tol, rtol=0)
        # Gradients are expected counts (marginals summed over up to L - 1 positions):
        # absolute agreement for probabilities, relative for counts near L (float32 sums).
        g_auto, g_seq = GRAD(e, A, method="auto"), GRAD(e, A, method="sequential")
        for a, b in zip(g_auto, g_seq, strict=True):
            np.testing.assert_allclose(
                a, b, atol=1e-9 if x64 else 1e-4, rtol=1e-9 if x64 else 4e-5
            )


def test_guard_stays_quiet_on_ordinary_scores():
    """The fast path is taken for network-like scores (otherwise "auto" would be slow)."""
    rng = np.random.default_rng(2)
    for scale in (1.0, 5.0, 10.0):
        e = jnp.asarray(scale * rng.normal(size=(200, 20)), jnp.float32)
        A = jnp.asarray(rng.normal(size=(20, 20)), jnp.float32)
        assert _trusted(e, A)
