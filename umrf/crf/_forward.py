r"""Forward algorithms for one linear-chain CRF sequence (used by :mod:`umrf.crf._chain`).

Every function here takes already-validated arrays: emissions ``e (L, K)``,
transitions ``trans (K, K)`` (or one table per step, ``(L-1, K, K)``), a
boolean prefix ``mask (L,)`` and start/end scores ``(K,)``. The methods and
their references are described in the :mod:`umrf.crf._chain` docstring.

The default method, ``"auto"``, is the probability-space forward algorithm
(Rabiner 1989, §V-A scaling) with an exactness guard, and falls back to the
log-space recursion for any sequence where the guard cannot vouch for the
result. The recursion keeps ``a_{t-1}`` normalised to ``max_k a_k = 1`` (by
``n_{t-1}``) and computes ``S_t = a_{t-1} P`` with ``P = exp(A - max A)``,
then ``a_t = S_t ⊙ E_t / n_t`` with ``E_t = exp(e_t - max_k e_{t,k})``.
With ``tiny`` the smallest normal float and ``eps`` the machine epsilon:

* an entry that is structurally zero (every path to it uses a ``-inf``
  score) is computed as an exact ``0`` (``exp(-inf) = 0``, ``0 · x = 0``);
  the recursion tracks this reachability alongside ``a``;
* every other quantity is either accurate to relative rounding error or,
  when it underflowed (an entry of ``E_t``, ``P`` or a product below
  ``tiny``), off by at most a few ``tiny`` in absolute terms: an entry of
  ``a_{t-1}`` by at most ``(K + 1) tiny / n_{t-1}``, so a column sum
  ``S_t(k)`` by at most ``(K (K + 1) / n_{t-1} + K) tiny``;
* hence a reachable column sum ``S_t(k) ≥ θ_t = (K (K + 1) / min(n_{t-1}, 1)
  + K) tiny / eps`` is accurate to within one more ``eps`` relative, and if
  this holds at every valid step (and for the end scores), the result equals
  the log-space forward algorithm up to rounding. Otherwise the sequence is
  flagged and the exact log-space result is used instead.

``θ_t`` is about ``4e-29`` (65 nats) for 20 labels in float32 and about 660
nats in float64 when ``n_{t-1} ≥ 1``. Since ``S_t(k) ≥ P_{i*k}`` for the
current most likely label ``i*``, and ``n_{t-1} ≥ P_{i*k*}`` when the most
likely emission label ``k*`` is reachable, the guard cannot trip while the
finite transition scores span less than about half that (30 nats in float32,
330 in float64), however wide the emission scores; in practice it stays quiet
far beyond (the tests check scores of scale 10). With ``-inf`` transitions it
trips only when every allowed predecessor of a reachable label is improbable.
When it trips, the answer is still exact, only slower.
Under ``jax.vmap`` the fallback is decided once per batch (a
``jax.custom_batching.custom_vmap`` rule), so an all-clear batch never runs
the log-space pass. First derivatives (a ``jax.custom_jvp`` rule) are
reverse-mode through the guarded recursion, trusted together with the value
(when nothing underflowed that matters for ``Z``, nothing that matters for a
marginal did either) and batched the same way; second and higher derivatives
come from the log-space recursion.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from umrf.crf._semiring import log_matmul, logsumexp_last, max_matmul


def forward_sequential(e, trans, mask, start, return_alphas: bool):
    """Log-space forward; ``trans`` is ``(K, K)`` or per step ``(L-1, K, K)``."""
    per_step = trans.ndim == 3
    a0 = start + e[0]

    def body(a, xs):
        if per_step:
            e_t, m_t, tt = xs
        else:
            (e_t, m_t), tt = xs, trans_t
        # s[j, i] = a_i + A_ij: reduce over the contiguous last axis.
        new = logsumexp_last(a[None, :] + tt) + e_t
        a = jnp.where(m_t, new, a)
        return a, (a if return_alphas else None)

    if per_step:
        xs = (e[1:], mask[1:], jnp.swapaxes(trans, -1, -2))
    else:
        trans_t = trans.T
        xs = (e[1:], mask[1:])
    a, alphas = jax.lax.scan(body, a0, xs)
    if return_alphas:
        alphas = jnp.concatenate([a0[None], alphas], axis=0)
    return a, alphas


def safe_max(x, axis=None, keepdims=False):
    m = jnp.max(x, axis=axis, keepdims=keepdims)
    return jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))


def log_partition_scaled(e, trans, mask, start, end):
    """Probability-space forward with per-step renormalisation (Rabiner 1989 scaling)."""
    per_step = trans.ndim == 3
    me = safe_max(e, axis=-1, keepdims=True)  # (L, 1)
    E = jnp.exp(e - me)
    if per_step:
        c = safe_max(trans, axis=(-2, -1), keepdims=True)  # (L-1, 1, 1)
        P = jnp.exp(trans - c)
        step_shift = c[:, 0, 0]
    else:
        c = safe_max(trans)
        P = jnp.exp(trans - c)
        step_shift = jnp.broadcast_to(c, (e.shape[0] - 1,))
    s0 = start + e[0]
    m0 = safe_max(s0)
    a0 = jnp.exp(s0 - m0)
    z0 = jnp.sum(a0)
    a0 = a0 / jnp.where(z0 > 0, z0, 1.0)  # z = 0 only if everything is forbidden

    def body(a, xs):
        if per_step:
            E_t, m_t, P_t = xs
        else:
            (E_t, m_t), P_t = xs, P
        new = jnp.matmul(a, P_t, precision=jax.lax.Precision.HIGHEST) * E_t
        z = jnp.sum(new)
        a = jnp.where(m_t, new / jnp.where(z > 0, z, 1.0), a)
        return a, jnp.where(m_t, jnp.log(z), jnp.zeros_like(z))

    xs = (E[1:], mask[1:], P) if per_step else (E[1:], mask[1:])
    a, logz = jax.lax.scan(body, a0, xs)
    valid = mask[1:]
    shifts = jnp.sum(jnp.where(valid, me[1:, 0] + step_shift, jnp.zeros_like(step_shift)))
    ce = safe_max(end)
    tail = jnp.log(jnp.sum(a * jnp.exp(end - ce))) + ce
    return m0 + jnp.log(z0) + jnp.sum(logz) + shifts + tail


def step_matrices(e, trans, mask, neg):
    """Per-step semiring matrices ``M_t = A + e_t`` (identity where masked), ``t >= 1``."""
    K = e.shape[1]
    if trans.ndim == 3:
        M = trans + e[1:, None, :]
    else:
        M = trans[None, :, :] + e[1:, None, :]
    eye = jnp.where(jnp.eye(K, dtype=bool), jnp.zeros((), e.dtype), jnp.asarray(neg, e.dtype))
    return jnp.where(mask[1:, None, None], M, eye[None])


def forward_parallel(e, trans, mask, start, *, semiring: str = "log"):
    """All prefix vectors ``α_t`` by an associative scan of semiring matrices."""
    K = e.shape[1]
    matmul = log_matmul if semiring == "log" else max_matmul
    first = jnp.broadcast_to(start + e[0], (K, K))  # every row is α_0
    elems = jnp.concatenate([first[None], step_matrices(e, trans, mask, -jnp.inf)], axis=0)
    prefix = jax.lax.associative_scan(matmul, elems, axis=0)
    return prefix[:, 0, :]  # (L, K)


def log_partition(e, trans, mask, start, end, method):
    """``log Z`` of one sequence by ``method`` (see the :mod:`umrf.crf._chain` docstring)."""
    if method == "auto":
        if trans.ndim == 3:  # per-step tables (marginals): the log-space recursion
            return _log_partition_exact(e, trans, mask, start, end)
        return log_partition_auto(e, trans, mask, start, end)
    if method == "scaled":
        return log_partition_scaled(e, trans, mask, start, end)
    if method == "parallel":
        return logsumexp_last(forward_parallel(e, trans, mask, start)[-1] + end)
    return _log_partition_exact(e, trans, mask, start, end)


def log_partition_guarded(e, trans, mask, start, end):
    """Scaled forward with the exactness guard; returns ``(log Z, trusted)``.

    ``trans`` must be one ``(K, K)`` table. ``trusted`` is False when, at some
    valid step (or at the end scores), a reachable column sum fell below the
    threshold ``θ_t`` of the module docstring; the caller then uses the
    log-space result.
    """
    K = e.shape[1]
    dtype = e.dtype
    info = jnp.finfo(dtype)
    unit = float(info.tiny) / float(info.eps)
    c = safe_max(trans)
    P = jnp.exp(trans - c)
    allowed = (trans > -jnp.inf).astype(dtype)
    me = safe_max(e, axis=-1, keepdims=True)
    E = jnp.exp(e - me)
    hi = jax.lax.Precision.HIGHEST

    def threshold(n_prev):
        return (K * (K + 1) / jnp.minimum(n_prev, 1.0) + K) * unit

    s0 = start + e[0]
    m0 = safe_max(s0)
    a0 = jnp.exp(s0 - m0)
    one = jnp.ones((), dtype)

    def body(carry, xs):
        a, reach, n_prev, trusted = carry
        E_t, e_t, m_t = xs
        S = jnp.matmul(a, P, precision=hi)
        new_reach = (jnp.matmul(reach.astype(dtype), allowed, precision=hi) > 0) & (e_t > -jnp.inf)
        step_ok = ~jnp.any(new_reach & (S < threshold(n_prev)))
        new = S * E_t
        n = jnp.max(new)
        new = new / jnp.where(n > 0, n, one)
        carry = (
            jnp.where(m_t, new, a),
            jnp.where(m_t, new_reach, reach),
            jnp.where(m_t, n, n_prev),
            trusted & (step_ok | ~m_t),
        )
        return carry, jnp.where(m_t, jnp.log(n), jnp.zeros_like(n))

    init = (a0, s0 > -jnp.inf, one, jnp.asarray(True))
    (a, reach, n_last, trusted), logn = jax.lax.scan(body, init, (E[1:], e[1:], mask[1:]))
    shifts = jnp.sum(jnp.where(mask[1:], me[1:, 0] + c, jnp.zeros_like(me[1:, 0])))
    ce = safe_max(end)
    S_end = jnp.dot(a, jnp.exp(end - ce), precision=hi)
    trusted &= ~(jnp.any(reach & (end > -jnp.inf)) & (S_end < threshold(n_last)))
    return m0 + jnp.sum(logn) + shifts + jnp.log(S_end) + ce, trusted


def _log_partition_exact(e, trans, mask, start, end):
    a, _ = forward_sequential(e, trans, mask, start, return_alphas=False)
    return logsumexp_last(a + end)


_DIFF_ARGS = (0, 1, 3, 4)  # emissions, transitions, start, end (not the mask)


def _value_and_grad_guarded(e, trans, mask, start, end):
    """``(log Z, ∇ log Z)`` by reverse-mode through the guarded scaled recursion.

    The gradient is trusted with the value: when no column sum fell below
    ``θ_t``, every path mass lost to underflow is negligible against ``Z``, so
    the marginals (the gradient) are accurate to rounding in absolute terms.
    ``log Z = -inf`` (nothing allowed) and any non-finite gradient are left to
    the log-space recursion, whose gradient is zero there.
    """
    (logz, trusted), grads = jax.value_and_grad(
        log_partition_guarded, argnums=_DIFF_ARGS, has_aux=True
    )(e, trans, mask, start, end)
    finite = jnp.isfinite(logz)
    for g in grads:
        finite &= jnp.all(jnp.isfinite(g))
    return (logz, grads), trusted & finite


def _value_and_grad_exact(e, trans, mask, start, end):
    return jax.value_and_grad(_log_partition_exact, argnums=_DIFF_ARGS)(e, trans, mask, start, end)


def _guarded(fast, exact):
    """``fast(*args) -> (out, trusted)`` with ``exact(*args) -> out`` where not trusted.

    Alone: ``lax.cond`` on ``trusted``. Under ``jax.vmap`` (a
    ``custom_vmap`` rule) the fast pass runs on the whole batch and the exact
    pass only if some sequence is not trusted, then only its rows are used,
    instead of the ``select`` (both branches, always) that batching a
    ``lax.cond`` would give.
    """

    @jax.custom_batching.custom_vmap
    def run(*args):
        out, trusted = fast(*args)
        return jax.lax.cond(trusted, lambda: out, lambda: exact(*args))

    @run.def_vmap
    def run_batched(axis_size, in_batched, *args):
        del axis_size
        axes = tuple(0 if b else None for b in in_batched)
        out, trusted = jax.vmap(fast, in_axes=axes)(*args)

        def with_fallback():
            ref = jax.vmap(exact, in_axes=axes)(*args)

            def pick(a, b):
                return jnp.where(trusted.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

            return jax.tree_util.tree_map(pick, out, ref)

        # One decision for the whole batch: an all-clear batch skips the log-space pass.
        res = jax.lax.cond(jnp.all(trusted), lambda: out, with_fallback)
        return res, jax.tree_util.tree_map(lambda _: True, res)

    return run


_log_partition_fast_or_exact = _guarded(log_partition_guarded, _log_partition_exact)
_value_and_grad_fast_or_exact = _guarded(_value_and_grad_guarded, _value_and_grad_exact)


@jax.custom_jvp
def _value_and_grad_auto(e, trans, mask, start, end):
    return _value_and_grad_fast_or_exact(e, trans, mask, start, end)


@_value_and_grad_auto.defjvp
def _value_and_grad_auto_jvp(primals, tangents):
    # Second and higher derivatives come from the log-space recursion.
    return jax.jvp(_value_and_grad_exact, primals, tangents)


@jax.custom_jvp
def log_partition_auto(e, trans, mask, start, end):
    """``log Z`` by the guarded scaled forward, exact log-space fallback (method ``"auto"``)."""
    return _log_partition_fast_or_exact(e, trans, mask, start, end)


@log_partition_auto.defjvp
def _log_partition_auto_jvp(primals, tangents):
    e, trans, mask, start, end = primals
    de, dtrans, _, dstart, dend = tangents
    logz, grads = _value_and_grad_auto(e, trans, mask, start, end)
    tangent = sum(jnp.sum(g * d) for g, d in zip(grads, (de, dtrans, dstart, dend), strict=True))
    return logz, tangent
