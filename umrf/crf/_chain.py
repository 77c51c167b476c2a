r"""Linear-chain conditional random fields on ONE sequence (DESIGN.md §6).

Model (Lafferty, McCallum & Pereira 2001). For emissions ``e`` of shape
``(L, K)`` (one score per position and label, e.g. a network's logits),
transitions ``A`` of shape ``(K, K)`` and optional start/end scores ``s, f``
of shape ``(K,)``, a label sequence ``y`` of valid length ``n`` (the prefix
``mask``) has the score

.. math::

    S(y) = s_{y_0} + \sum_{t<n} e_{t, y_t} + \sum_{1 \le t < n} A_{y_{t-1}, y_t} + f_{y_{n-1}},

and ``p(y | e) = exp(S(y)) / Z`` with ``log Z = logsumexp_y S(y)``. In umrf's
energy convention (DESIGN.md §1) the energy is ``E(y) = -S(y)``.

**Orientation.** ``transitions[i, j]`` scores label ``i`` at position ``t-1``
followed by label ``j`` at position ``t`` (the same orientation as
pytorch-crf's ``CRF.transitions``). A ``-inf`` entry forbids that move; it is
a hard constraint handled without NaN in the forward algorithm, in Viterbi,
in the marginals and in every gradient.

**Masks.** ``mask`` is a boolean prefix mask ``(L,)``: ``mask[:n]`` is True
and ``mask[n:]`` False with ``n >= 1``. Padded positions carry no score; tags
there are ignored (any integer, e.g. a padding value, is accepted). Returned
per-position arrays at padded positions hold: ``-1`` in a Viterbi path or a
sample, zero rows in node marginals and zero tables in pairwise marginals
(pair ``t`` couples positions ``t`` and ``t+1`` and is zero when ``t+1`` is
padded). Whether the mask is a prefix is checked when its values are
concrete; a non-prefix mask under ``jit`` is undefined behaviour.

**Batches.** Every function takes one sequence; batch (with per-sequence
masks) by ``jax.vmap``, e.g.
``jax.vmap(chain_log_likelihood, (0, None, 0, 0))(E, A, Y, M)``.

**Methods** (``method=`` keyword):

* ``"auto"`` (default): the ``"scaled"`` recursion below with an exactness
  guard, falling back to ``"sequential"`` for any sequence the guard cannot
  vouch for, so the result always equals ``"sequential"`` up to rounding
  (the argument is in :mod:`umrf.crf._forward`). The guard trips only when
  the mass flowing into a reachable label (before its emission score) falls
  about 65 nats below the step's scale in float32 (660 in float64): in
  practice only when finite transition scores span tens of nats, or ``-inf``
  transitions leave a label with only improbable predecessors; wide emission
  scores alone do not trip it. A tripped call costs both passes. Under ``jax.vmap`` the
  fallback is decided once for the whole batch. First derivatives (the
  training gradient) go through the same guarded recursion with the same
  fallback; :func:`chain_marginals` and higher derivatives use the log-space
  recursion.
* ``"sequential"``: the forward algorithm (Rabiner 1989) in log
  space, ``α_t(j) = e_{t,j} + log Σ_i exp(α_{t-1}(i) + A_{ij})``; exact for
  any finite or ``-inf`` scores; ``O(L K²)`` work in ``L`` sequential steps,
  with ``K²`` exponentials per step.
* ``"scaled"``: the same recursion in probability space with a matrix-vector
  product per step and renormalisation after every step (Rabiner's scaling),
  ``a_t = (a_{t-1} exp(A - max A)) ⊙ exp(e_t - max_k e_{t,k}) / c_t`` and
  ``log Z = Σ_t log c_t + shifts``; ``K`` exponentials per step instead of
  ``K²``. Several times faster on CPU, identical to
  ``"sequential"`` up to rounding as long as the score range that matters
  stays within the floating-point exponent range (about 80 nats in float32,
  700 in float64); beyond that, probability mass of near-impossible paths
  underflows to zero. ``-inf`` entries are exact (``exp(-inf) = 0``).
* ``"parallel"``: prefix products of the per-step log-semiring matrices
  ``M_t[i, j] = A_{ij} + e_{t,j}`` with ``jax.lax.associative_scan``
  (Särkkä & García-Fernández 2021): ``O(log L)`` depth, ``O(L K³)`` work. For
  long sequences on accelerators. Viterbi uses the max-plus semiring and the
  forward-backward max-marginal decoding ``y_t = argmax_j α_t(j) + β_t(j)``.

References:
  J. Lafferty, A. McCallum, F. Pereira. Conditional random fields:
  probabilistic models for segmenting and labeling sequence data. ICML 2001.

  L. R. Rabiner. A tutorial on hidden Markov models and selected applications
  in speech recognition. Proc. IEEE 77(2), 1989.

  S. Särkkä, Á. F. García-Fernández. Temporal parallelization of Bayesian
  smoothers. IEEE TAC 66(1), 2021; and "Temporal parallelization of
  inference in hidden Markov models", IEEE TSP 69, 2021.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import is_concrete
from umrf.crf._forward import forward_parallel, forward_sequential, log_partition, step_matrices
from umrf.crf._semiring import max_matmul

__all__ = [
    "ChainMarginals",
    "chain_log_likelihood",
    "chain_log_partition",
    "chain_marginals",
    "chain_sample",
    "chain_score",
    "viterbi",
]

_METHODS = ("auto", "sequential", "scaled", "parallel")
_VITERBI_METHODS = ("sequential", "parallel")


class ChainMarginals(NamedTuple):
    """Posterior marginals of a linear-chain CRF.

    Attributes:
      nodes: ``(L, K)``, ``nodes[t, k] = p(y_t = k)``; zero rows at padded positions.
      pairs: ``(L-1, K, K)``, ``pairs[t, i, j] = p(y_t = i, y_{t+1} = j)``; zero
        tables where position ``t+1`` is padded.
    """

    nodes: jax.Array
    pairs: jax.Array


# --------------------------------------------------------------------------- validation


def _float_dtype(*arrays: jax.Array) -> jnp.dtype:
    dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.zeros(()).dtype  # default float (float32, or float64 under x64)
    return dtype


def _check_scores(name: str, x: jax.Array) -> None:
    if not is_concrete(x):
        return
    arr = np.asarray(x)
    if np.any(np.isnan(arr)) or np.any(np.isposinf(arr)):
        raise ValueError(
            f"`{name}` contains NaN or +inf; scores must be finite or -inf "
            "(-inf forbids a label or move)."
        )


def _prepare(
    emissions,
    transitions,
    mask,
    start,
    end,
    tags=None,
    *,
    method: str = "auto",
    methods: tuple[str, ...] = _METHODS,
):
    """Validate shapes/values (before tracing where concrete) and fill defaults."""
    if method not in methods:
        raise ValueError(f"`method` must be one of {methods}; got {method!r}.")
    emissions = jnp.asarray(emissions)
    transitions = jnp.asarray(transitions)
    if emissions.ndim != 2 or emissions.shape[0] < 1 or emissions.shape[1] < 1:
        raise ValueError(
            f"`emissions` must have shape (L, K) with L, K >= 1 (one sequence; batch with "
            f"jax.vmap); got shape {emissions.shape}."
        )
    L, K = emissions.shape
    if transitions.shape != (K, K):
        raise ValueError(
            f"`transitions` must have shape (K, K) = ({K}, {K}) to match `emissions` "
            f"(L, K) = {emissions.shape}; got {transitions.shape}."
        )
    arrays = [emissions, transitions]
    out = []
    for name, v in (("start", start), ("end", end)):
        if v is None:
            out.append(None)
            continue
        v = jnp.asarray(v)
        if v.shape != (K,):
            raise ValueError(f"`{name}` must have shape (K,) = ({K},); got {v.shape}.")
        arrays.append(v)
        out.append(v)
    dtype = _float_dtype(*arrays)
    emissions = emissions.astype(dtype)
    transitions = transitions.astype(dtype)
    start = jnp.zeros((K,), dtype) if out[0] is None else out[0].astype(dtype)
    end = jnp.zeros((K,), dtype) if out[1] is None else out[1].astype(dtype)
    for name, v in (("emissions", emissions), ("transitions", transitions)):
        _check_scores(name, v)
    for name, v in (("start", start), ("end", end)):
        _check_scores(name, v)

    if mask is None:
        mask = jnp.ones((L,), bool)
    else:
        mask = jnp.asarray(mask)
        if mask.shape != (L,):
            raise ValueError(
                f"`mask` must have shape (L,) = ({L},) like emissions' first axis; "
                f"got {mask.shape}."
            )
        if is_concrete(mask):
            m = np.asarray(mask)
            if not np.all((m == 0) | (m == 1)):
                raise ValueError("`mask` must be boolean (or 0/1); got other values.")
            m = m.astype(bool)
            if not m[0]:
                raise ValueError(
                    "`mask[0]` must be True: every sequence needs at least one valid position."
                )
            if np.any(~m[:-1] & m[1:]):
                raise ValueError(
                    "`mask` must be a prefix mask (True for the first n positions, then "
                    f"False); got {m.astype(int).tolist()}. Left-align the padded sequence."
                )
        mask = mask.astype(bool)

    if tags is not None:
        tags = jnp.asarray(tags)
        if tags.shape != (L,):
            raise ValueError(f"`tags` must have shape (L,) = ({L},); got {tags.shape}.")
        if not jnp.issubdtype(tags.dtype, jnp.integer):
            raise TypeError(f"`tags` must be an integer array of labels; got dtype {tags.dtype}.")
        if is_concrete(tags) and is_concrete(mask):
            t, m = np.asarray(tags), np.asarray(mask)
            bad = m & ((t < 0) | (t >= K))
            if np.any(bad):
                raise ValueError(
                    f"`tags` must lie in [0, {K - 1}] at valid positions; got "
                    f"{t[bad].tolist()} at positions {np.nonzero(bad)[0].tolist()}."
                )
    return emissions, transitions, mask, start, end, tags


def _contract_holds(mask: jax.Array, tags: jax.Array | None, K: int) -> jax.Array:
    """False when traced inputs break the contract that concrete ones are checked for.

    Concrete masks and tags are validated by :func:`_prepare` before tracing; under
    ``jit`` they cannot be, so the public functions return NaN instead of a
    plausible number for a mask that is not a prefix mask starting with True, or a
    tag outside ``[0, K)`` at a valid position.
    """
    ok = mask[0] & jnp.all(mask[:-1] | ~mask[1:])
    if tags is not None:
        ok = ok & ~jnp.any(mask & ((tags < 0) | (tags >= K)))
    return ok


def _nan_unless(ok: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.where(ok, x, jnp.asarray(jnp.nan, x.dtype))


# --------------------------------------------------------------------------- public API


def chain_log_partition(
    emissions: jax.Array,
    transitions: jax.Array,
    mask: jax.Array | None = None,
    start: jax.Array | None = None,
    end: jax.Array | None = None,
    *,
    method: str = "auto",
) -> jax.Array:
    r"""Log partition function ``log Z = log Σ_y exp S(y)`` of one sequence.

    Forward algorithm (Rabiner 1989): ``α_0 = s + e_0``,
    ``α_t(j) = e_{t,j} + log Σ_i exp(α_{t-1}(i) + A_{ij})`` at valid ``t``
    (``α_t = α_{t-1}`` at padded ``t``), ``log Z = log Σ_j exp(α_{n-1}(j) + f_j)``.
    See the module docstring for the score ``S``, the orientation of
    ``transitions`` and the four methods.

    Args:
      emissions: ``(L, K)`` emission scores.
      transitions: ``(K, K)``; ``transitions[i, j]`` scores label ``i`` followed by ``j``.
      mask: optional ``(L,)`` boolean prefix mask (default: all valid).
      start: optional ``(K,)`` scores of the first label (default 0).
      end: optional ``(K,)`` scores of the last valid label (default 0).
      method: ``"auto"`` (fast and exact: guarded probability space with a
        log-space fallback), ``"sequential"`` (log space), ``"scaled"`` (fast
        probability space, unguarded) or ``"parallel"`` (associative scan).

    Returns:
      Scalar ``log Z``; ``-inf`` if every label sequence is forbidden.

    Examples:
      >>> import jax.numpy as jnp
      >>> from umrf.crf import chain_log_partition
      >>> round(float(chain_log_partition(jnp.zeros((3, 2)), jnp.zeros((2, 2)))), 4)
      2.0794
    """
    e, A, m, s, f, _ = _prepare(emissions, transitions, mask, start, end, method=method)
    return _log_partition_program(e, A, m, s, f, method)


# Each public function validates its concrete inputs, then calls one jitted program: an
# eager call compiles once per shape and method instead of re-tracing its scans every call
# (inside an outer jit or vmap the inner jit is inlined).
@functools.partial(jax.jit, static_argnames="method")
def _log_partition_program(e, A, m, s, f, method):
    ok = _contract_holds(m, None, e.shape[1])
    return _nan_unless(ok, log_partition(e, A, m, s, f, method))


def chain_score(
    emissions: jax.Array,
    transitions: jax.Array,
    tags: jax.Array,
    mask: jax.Array | None = None,
    start: jax.Array | None = None,
    end: jax.Array | None = None,
) -> jax.Array:
    r"""Unnormalised score ``S(y)`` of one label sequence (``= -E(y)``).

    ``S(y) = s_{y_0} + Σ_{t<n} e_{t,y_t} + Σ_{1≤t<n} A_{y_{t-1},y_t} + f_{y_{n-1}}``.

    Args:
      emissions: ``(L, K)``.
      transitions: ``(K, K)``, ``transitions[i, j]`` scores ``i`` followed by ``j``.
      tags: ``(L,)`` integer labels in ``[0, K)`` at valid positions.
      mask: optional ``(L,)`` boolean prefix mask.
      start: optional ``(K,)``.
      end: optional ``(K,)``.

    Returns:
      Scalar score (``-inf`` if the sequence uses a forbidden move).
    """
    e, A, m, s, f, y = _prepare(emissions, transitions, mask, start, end, tags)
    return _score_program(e, A, m, s, f, y)


def _score(e, A, m, s, f, y):
    L, K = e.shape
    ok = _contract_holds(m, y, K)
    y = jnp.clip(y, 0, K - 1)  # a safe gather; out-of-range traced tags give NaN via ``ok``
    zero = jnp.zeros((), e.dtype)
    emit = jnp.sum(jnp.where(m, jnp.take_along_axis(e, y[:, None], axis=1)[:, 0], zero))
    trans = jnp.sum(jnp.where(m[1:], A[y[:-1], y[1:]], zero))
    last = jnp.sum(m.astype(jnp.int32)) - 1
    onehot_last = jnp.arange(L) == last
    end_score = jnp.sum(jnp.where(onehot_last, f[y], zero))
    return _nan_unless(ok, s[y[0]] + emit + trans + end_score)


def chain_log_likelihood(
    emissions: jax.Array,
    transitions: jax.Array,
    tags: jax.Array,
    mask: jax.Array | None = None,
    start: jax.Array | None = None,
    end: jax.Array | None = None,
    *,
    method: str = "auto",
) -> jax.Array:
    r"""Conditional log-likelihood ``log p(y | e) = S(y) - log Z`` of one sequence.

    Lafferty et al. (2001), eq. (1); ``log Z`` by the forward algorithm
    (:func:`chain_log_partition`). Its negative is the CRF training loss
    (see ``umrf.losses.crf_negative_log_likelihood`` for the batch mean).

    Args:
      emissions: ``(L, K)`` emission scores.
      transitions: ``(K, K)``; ``transitions[i, j]`` scores label ``i`` followed by ``j``.
      tags: ``(L,)`` integer labels; values at padded positions are ignored.
      mask: optional ``(L,)`` boolean prefix mask.
      start: optional ``(K,)`` start scores.
      end: optional ``(K,)`` end scores.
      method: forward method, see :func:`chain_log_partition`.

    Returns:
      Scalar log-likelihood ``<= 0`` (``-inf`` for a forbidden sequence).

    Examples:
      >>> import jax.numpy as jnp
      >>> from umrf.crf import chain_log_likelihood
      >>> ll = chain_log_likelihood(jnp.zeros((3, 2)), jnp.zeros((2, 2)), jnp.array([0, 1, 1]))
      >>> round(float(ll), 4)  # uniform over 2**3 sequences
      -2.0794
    """
    e, A, m, s, f, y = _prepare(emissions, transitions, mask, start, end, tags, method=method)
    return _log_likelihood_program(e, A, m, s, f, y, method)


_score_program = jax.jit(_score)


@functools.partial(jax.jit, static_argnames="method")
def _log_likelihood_program(e, A, m, s, f, y, method):
    return _score(e, A, m, s, f, y) - log_partition(e, A, m, s, f, method)


def chain_marginals(
    emissions: jax.Array,
    transitions: jax.Array,
    mask: jax.Array | None = None,
    start: jax.Array | None = None,
    end: jax.Array | None = None,
    *,
    method: str = "auto",
) -> ChainMarginals:
    r"""Node and pairwise posterior marginals by differentiating ``log Z``.

    ``p(y_t = k) = ∂ log Z / ∂ e_{t,k}`` and
    ``p(y_t = i, y_{t+1} = j) = ∂ log Z / ∂ A^{(t)}_{ij}`` where ``A^{(t)}`` is the
    transition table used between positions ``t`` and ``t+1`` (the
    forward-backward algorithm obtained by reverse-mode autodiff, as in
    Eisner 2016, "Inside-outside and forward-backward algorithms are just
    backprop"). ``-inf`` entries give exact zeros, never NaN.

    Args:
      emissions: ``(L, K)``.
      transitions: ``(K, K)``, ``transitions[i, j]`` scores ``i`` followed by ``j``.
      mask: optional ``(L,)`` boolean prefix mask.
      start: optional ``(K,)``.
      end: optional ``(K,)``.
      method: forward method, see :func:`chain_log_partition`.

    Returns:
      :class:`ChainMarginals` ``(nodes (L, K), pairs (L-1, K, K))``; zero at
      padded positions.
    """
    e, A, m, s, f, _ = _prepare(emissions, transitions, mask, start, end, method=method)
    return _marginals_program(e, A, m, s, f, method)


@functools.partial(jax.jit, static_argnames="method")
def _marginals_program(e, A, m, s, f, method):
    L, K = e.shape
    per_step = jnp.broadcast_to(A, (L - 1, K, K))
    nodes, pairs = jax.grad(lambda ee, aa: log_partition(ee, aa, m, s, f, method), argnums=(0, 1))(
        e, per_step
    )
    ok = _contract_holds(m, None, K)
    return ChainMarginals(nodes=_nan_unless(ok, nodes), pairs=_nan_unless(ok, pairs))


def viterbi(
    emissions: jax.Array,
    transitions: jax.Array,
    mask: jax.Array | None = None,
    start: jax.Array | None = None,
    end: jax.Array | None = None,
    *,
    method: str = "sequential",
) -> tuple[jax.Array, jax.Array]:
    r"""Most probable label sequence ``argmax_y S(y)`` and its score (Viterbi 1967).

    Max-plus forward recursion ``δ_t(j) = e_{t,j} + max_i (δ_{t-1}(i) + A_{ij})``
    with back-pointers, then backtracking from ``argmax_j δ_{n-1}(j) + f_j``
    (Rabiner 1989, §III-B). ``method="parallel"`` computes max-plus prefix
    (``δ_t``) and suffix (``β_t``) products with ``jax.lax.associative_scan``
    and decodes ``y_t = argmax_j δ_t(j) + β_t(j)`` (Särkkä & García-Fernández
    2021); it equals the sequential path whenever the best path is unique
    (almost surely for continuous scores); with exact ties it may mix
    different maximisers, while the returned score is always the maximum.

    Args:
      emissions: ``(L, K)``.
      transitions: ``(K, K)``, ``transitions[i, j]`` scores ``i`` followed by ``j``.
      mask: optional ``(L,)`` boolean prefix mask.
      start: optional ``(K,)``.
      end: optional ``(K,)``.
      method: ``"sequential"`` or ``"parallel"``.

    Returns:
      ``(path, score)``: ``path`` int32 ``(L,)`` with ``-1`` at padded positions;
      ``score`` the scalar ``S(path)`` (``-inf`` if every sequence is forbidden).
    """
    e, A, m, s, f, _ = _prepare(
        emissions, transitions, mask, start, end, method=method, methods=_VITERBI_METHODS
    )
    return _viterbi_program(e, A, m, s, f, method)


@functools.partial(jax.jit, static_argnames="method")
def _viterbi_program(e, A, m, s, f, method):
    if method == "parallel":
        path, score = _viterbi_parallel(e, A, m, s, f)
    else:
        path, score = _viterbi_sequential(e, A, m, s, f)
    return jnp.where(m, path, -1).astype(jnp.int32), score


def _viterbi_sequential(e, A, m, s, f):
    K = e.shape[1]
    At = A.T  # At[j, i] = A[i, j]
    ident = jnp.arange(K, dtype=jnp.int32)

    def body(d, xs):
        e_t, m_t = xs
        cand = d[None, :] + At  # cand[j, i] = δ(i) + A_ij
        bp = jnp.argmax(cand, axis=-1).astype(jnp.int32)
        new = jnp.take_along_axis(cand, bp[:, None], axis=-1)[:, 0] + e_t
        return jnp.where(m_t, new, d), jnp.where(m_t, bp, ident)

    d, bps = jax.lax.scan(body, s + e[0], (e[1:], m[1:]))
    final = d + f
    last = jnp.argmax(final).astype(jnp.int32)

    def back(y, bp):
        prev = bp[y]
        return prev, prev

    _, prev = jax.lax.scan(back, last, bps, reverse=True)
    return jnp.concatenate([prev, last[None]]), final[last]


def _viterbi_parallel(e, A, m, s, f):
    K = e.shape[1]
    delta = forward_parallel(e, A, m, s, semiring="max")  # (L, K)
    # Suffix products beta_t = M_{t+1} ⊗ ... ⊗ M_{L-1} ⊗ f (max-plus), beta_{L-1} = f.
    last = jnp.broadcast_to(f[:, None], (K, K))  # every column is f
    elems = jnp.concatenate([step_matrices(e, A, m, -jnp.inf), last[None]], axis=0)
    # With reverse=True, associative_scan calls fn(later, earlier): swap to keep the order.
    suffix = jax.lax.associative_scan(
        lambda later, earlier: max_matmul(earlier, later), elems, axis=0, reverse=True
    )
    beta = suffix[:, :, 0]  # (L, K); suffix[t] = M_{t+1} ⊗ ... ⊗ F
    path = jnp.argmax(delta + beta, axis=-1).astype(jnp.int32)
    return path, jnp.max(delta[-1] + f)


def chain_sample(
    key: jax.Array,
    emissions: jax.Array,
    transitions: jax.Array,
    mask: jax.Array | None = None,
    start: jax.Array | None = None,
    end: jax.Array | None = None,
) -> jax.Array:
    r"""Draw one exact sample ``y ~ p(y | e)`` by forward filtering, backward sampling.

    Forward log-messages ``α_t`` (see :func:`chain_log_partition`), then
    ``y_{n-1} ~ softmax(α_{n-1} + f)`` and, backwards,
    ``y_{t-1} ~ softmax_i(α_{t-1}(i) + A_{i, y_t})`` (Frühwirth-Schnatter 1994;
    Carter & Kohn 1994). ``-inf`` scores are never sampled.

    Args:
      key: a ``jax.random`` key.
      emissions: ``(L, K)``.
      transitions: ``(K, K)``, ``transitions[i, j]`` scores ``i`` followed by ``j``.
      mask: optional ``(L,)`` boolean prefix mask.
      start: optional ``(K,)``.
      end: optional ``(K,)``.

    Returns:
      int32 ``(L,)`` labels, ``-1`` at padded positions.
    """
    e, A, m, s, f, _ = _prepare(emissions, transitions, mask, start, end)
    return _sample_program(key, e, A, m, s, f)


@jax.jit
def _sample_program(key, e, A, m, s, f):
    L = e.shape[0]
    _, alphas = forward_sequential(e, A, m, s, return_alphas=True)
    k_last, k_rest = jax.random.split(key)
    # alphas[L-1] equals α_{n-1} because padded steps carry α unchanged.
    y_last = jax.random.categorical(k_last, alphas[-1] + f).astype(jnp.int32)

    def back(y, xs):
        a_prev, m_t, k = xs
        draw = jax.random.categorical(k, a_prev + A[:, y]).astype(jnp.int32)
        y_prev = jnp.where(m_t, draw, y)
        return y_prev, y_prev

    keys = jax.random.split(k_rest, max(L - 1, 1))[: L - 1]
    _, prev = jax.lax.scan(back, y_last, (alphas[:-1], m[1:], keys), reverse=True)
    path = jnp.concatenate([prev, y_last[None]])
    return jnp.where(m, path, -1).astype(jnp.int32)


def check_chain_batch(emissions, transitions, tags, mask, start, end) -> None:
    """Validate a batch ``emissions (B, L, K)``, ``tags (B, L)``, ``mask (B, L)`` before vmap.

    Inside ``jax.vmap`` the per-sequence checks of the chain functions see
    tracers and skip value checks, so batch callers (the CRF loss) check the
    concrete batch here first: shapes, label range at valid positions and
    prefix masks.
    """
    emissions = jnp.asarray(emissions)
    if emissions.ndim != 3:
        raise ValueError(
            f"`emissions` must have shape (B, L, K) (a batch of sequences); got {emissions.shape}."
        )
    B, L, K = emissions.shape
    if B < 1:
        raise ValueError("`emissions` has an empty batch; pass at least one sequence.")
    tags = jnp.asarray(tags)
    if tags.shape != (B, L):
        raise ValueError(f"`tags` must have shape (B, L) = ({B}, {L}); got {tags.shape}.")
    if mask is not None and jnp.shape(mask) != (B, L):
        raise ValueError(f"`mask` must have shape (B, L) = ({B}, {L}); got {jnp.shape(mask)}.")
    # Shapes and values of transitions/start/end via the one-sequence checks.
    _prepare(emissions[0], transitions, None, start, end)
    if not jnp.issubdtype(tags.dtype, jnp.integer):
        raise TypeError(f"`tags` must be an integer array of labels; got dtype {tags.dtype}.")
    _check_scores("emissions", emissions)
    if not is_concrete((tags, mask)):
        return
    t_np = np.asarray(tags)
    m = np.ones((B, L), bool) if mask is None else np.asarray(mask)
    if not np.all((m == 0) | (m == 1)):
        raise ValueError("`mask` must be boolean (or 0/1); got other values.")
    m = m.astype(bool)
    if not np.all(m[:, 0]):
        raise ValueError("`mask[:, 0]` must be True: every sequence needs a valid position.")
    holes = np.any(~m[:, :-1] & m[:, 1:], axis=1)
    if np.any(holes):
        raise ValueError(
            f"`mask` must be a prefix mask in every row; rows {np.nonzero(holes)[0].tolist()} "
            "are not. Left-align the padded sequences."
        )
    bad = m & ((t_np < 0) | (t_np >= K))
    if np.any(bad):
        raise ValueError(
            f"`tags` must lie in [0, {K - 1}] at valid positions; got values "
            f"{np.unique(t_np[bad]).tolist()}."
        )
