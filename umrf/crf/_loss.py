"""Negative log-likelihood of a linear-chain CRF as a batch loss (DESIGN.md §4).

Exported as ``umrf.losses.crf_negative_log_likelihood``; it lives beside the
chain CRF so that ``umrf.crf``'s trainers use it without ``umrf.crf``
importing ``umrf.losses`` (which imports this module).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from umrf._loss_common import finalize
from umrf.crf._chain import chain_log_likelihood, check_chain_batch


def crf_negative_log_likelihood(
    emissions: jax.Array,
    transitions: jax.Array,
    tags: jax.Array,
    mask: jax.Array | None = None,
    start: jax.Array | None = None,
    end: jax.Array | None = None,
    *,
    method: str = "auto",
    return_info: bool = False,
) -> Any:
    r"""Mean negative conditional log-likelihood of a batch of label sequences.

    .. math::

       ℓ(θ) = -\frac1B \sum_{b=1}^{B} \big[S_θ(y^{(b)}) - \log Z_θ(e^{(b)})\big],

    with the linear-chain score ``S`` and partition function ``Z`` of
    :func:`umrf.crf.chain_log_likelihood` (Lafferty et al. 2001), i.e. the
    energy ``E = -S`` of DESIGN.md §1. The mean is over sequences (each
    sequence counts once whatever its length). ``emissions`` usually come from a
    network ``f_θ(x)`` and ``transitions`` (and ``start``/``end``) are
    parameters, so

    ``jax.grad(lambda p: crf_negative_log_likelihood(net(p, x), p["A"], y, m))(params)``

    is the CRF training gradient (observed minus expected sufficient
    statistics). A non-finite loss (e.g. a gold sequence using a ``-inf``
    transition) is returned as is and flagged by ``return_info=True``.

    Args:
      emissions: ``(B, L, K)`` emission scores of ``B`` sequences padded to ``L``.
      transitions: ``(K, K)``; ``transitions[i, j]`` scores label ``i`` followed by ``j``.
      tags: ``(B, L)`` integer gold labels (ignored at padded positions).
      mask: optional ``(B, L)`` boolean prefix masks (default: all valid).
      start: optional ``(K,)`` start scores.
      end: optional ``(K,)`` end scores.
      method: forward algorithm, ``"auto"``, ``"sequential"``, ``"scaled"`` or
        ``"parallel"`` (see :func:`umrf.crf.chain_log_partition`).
      return_info: also return a :class:`umrf.losses.LossInfo`.

    Returns:
      Scalar loss, or ``(loss, info)`` with ``return_info=True``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from umrf.losses import crf_negative_log_likelihood
      >>> nll = crf_negative_log_likelihood(
      ...     jnp.zeros((2, 3, 2)), jnp.zeros((2, 2)), jnp.zeros((2, 3), jnp.int32))
      >>> round(float(nll), 4)  # log 2**3
      2.0794

    References:
      J. Lafferty, A. McCallum, F. Pereira. Conditional random fields:
      probabilistic models for segmenting and labeling sequence data. ICML 2001.
    """
    check_chain_batch(emissions, transitions, tags, mask, start, end)
    emissions = jnp.asarray(emissions)
    if mask is None:
        mask = jnp.ones(emissions.shape[:2], bool)

    def one(e, y, m):
        return chain_log_likelihood(e, transitions, y, m, start=start, end=end, method=method)

    ll = jax.vmap(one)(emissions, jnp.asarray(tags), jnp.asarray(mask))
    return finalize(-ll, return_info)
