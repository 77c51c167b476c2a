"""Contrastive divergence: the maximum-likelihood gradient with model samples.

For ``p_θ(x) = exp(-E_θ(x)) / Z_θ`` the negative log-likelihood gradient is

    -∇θ log p_θ(x) = ∇θ E_θ(x) - E_{x'∼p_θ}[∇θ E_θ(x')],

because ``∇θ log Z_θ = -E_{p_θ}[∇θ E_θ]``. The surrogate

    L(θ) = mean_i E_θ(x_i^data) - mean_j E_θ(sg(x_j^model))

has exactly this gradient when the negatives ``x^model`` are samples of
``p_θ`` (``sg`` is ``stop_gradient``: samples are constants). Its value is
*not* a log-likelihood; only its gradient is meaningful.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._loss_common import batch_size
from umrf._validation import check_finite, check_positive, is_concrete


class ContrastiveDivergenceInfo(NamedTuple):
    """Diagnostics of :func:`contrastive_divergence` (``return_info=True``).

    Attributes:
      is_finite: scalar bool, ``True`` iff the loss is finite.
      num_nonfinite: number of non-finite energies among data and negatives.
      energy_data: mean energy of the data batch.
      energy_model: (weighted) mean energy of the negatives. A growing gap
        ``energy_model - energy_data`` is the usual sign of a sampler that
        no longer mixes.
    """

    is_finite: jax.Array
    num_nonfinite: jax.Array
    energy_data: jax.Array
    energy_model: jax.Array


def contrastive_divergence(
    energy_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    x_data: Any,
    x_model: Any,
    *,
    alpha: float = 0.0,
    model_weights: Any = None,
    return_info: bool = False,
) -> Any:
    r"""Contrastive-divergence surrogate whose gradient is the ML gradient estimate.

    .. math::

       L(θ) = \frac1n\sum_i E_θ(x_i) - \sum_j w_j E_θ(\mathrm{sg}(\tilde x_j))
              + α\Big(\frac1n\sum_i E_θ(x_i)^2 + \sum_j w_j E_θ(\tilde x_j)^2\Big)

    with ``w_j = 1/m`` unless ``model_weights`` is given. ``∇θ L`` (at
    ``α = 0``) is ``-∇θ`` of the mean log-likelihood when ``x̃`` are exact
    model samples, or when ``x̃`` enumerates the state space and ``w`` are
    the model probabilities (then the gradient is exact). How the negatives
    are produced decides the algorithm: short chains from the data (CD-k,
    Hinton 2002), persistent chains (PCD, Tieleman 2008) or a replay buffer
    (Du & Mordatch 2019; Grathwohl et al. 2020); see
    ``umrf.samplers.cd_negatives``, ``pcd_negatives``, ``replay_negatives``.
    The ``α`` term is the energy-magnitude regulariser of Du & Mordatch
    (2019), which keeps energies near zero. The loss assumes ``T = 1``; for a
    model at temperature ``T`` pass ``lambda p, x: energy_fn(p, x) / T``.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar`` on one configuration.
      params: pytree of parameters (differentiated).
      x_data: data batch with a leading batch axis (float or int states).
      x_model: negatives with a leading batch axis; ``stop_gradient`` is
        applied, so samplers need not be differentiated.
      alpha: keyword-only, ``>= 0``: weight of the energy-magnitude penalty.
      model_weights: keyword-only, optional ``(m,)`` non-negative weights of
        the negatives summing to one (e.g. exact probabilities of an
        enumerated state space); treated as constants.
      return_info: keyword-only; also return a :class:`ContrastiveDivergenceInfo`.

    Returns:
      The scalar loss, or ``(loss, ContrastiveDivergenceInfo)``. A NaN/inf
      energy makes the loss non-finite; it is returned as is and flagged.

    Raises:
      ValueError: empty batches, non-finite ``x_data``, negative ``alpha``,
        or malformed ``model_weights``.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> energy = lambda m, x: 0.5 * jnp.sum((x - m) ** 2)
      >>> data, negatives = jnp.ones((4, 2)), jnp.zeros((4, 2))
      >>> g = jax.grad(umrf.losses.contrastive_divergence, argnums=1)(
      ...     energy, jnp.zeros(2), data, negatives)
      >>> g.tolist()  # descending moves the mean towards the data
      [-1.0, -1.0]

    References:
      Hinton, *Training products of experts by minimizing contrastive
      divergence*, Neural Computation 2002. Tieleman, *Training restricted
      Boltzmann machines using approximations to the likelihood gradient*,
      ICML 2008. Du & Mordatch, *Implicit generation and modeling with
      energy-based models*, NeurIPS 2019.
    """
    batch_size("x_data", x_data)
    m = batch_size("x_model", x_model)
    d_leaves, d_def = jax.tree_util.tree_flatten(x_data)
    m_leaves, m_def = jax.tree_util.tree_flatten(x_model)
    if d_def != m_def or any(
        jnp.shape(a)[1:] != jnp.shape(b)[1:] for a, b in zip(d_leaves, m_leaves, strict=True)
    ):
        raise ValueError(
            "`x_model` must hold configurations shaped like those of `x_data`; got per-example "
            f"shapes {[jnp.shape(b)[1:] for b in m_leaves]} for the negatives and "
            f"{[jnp.shape(a)[1:] for a in d_leaves]} for the data."
        )
    check_finite("x_data", x_data)
    # x_model is NOT checked: non-finite negatives are a sampler failure, which
    # must surface as a flagged non-finite loss (the same eagerly and under jit).
    check_positive("alpha", alpha, allow_zero=True)
    if model_weights is not None:
        w = model_weights if isinstance(model_weights, jax.Array) else jnp.asarray(model_weights)
        if w.shape != (m,):
            raise ValueError(
                f"`model_weights` must have shape ({m},), one weight per negative; got {w.shape}."
            )
        if is_concrete(w):
            wn = np.asarray(w, dtype=np.float64)
            if np.any(~np.isfinite(wn)) or np.any(wn < 0) or abs(wn.sum() - 1.0) > 1e-4:
                raise ValueError(
                    "`model_weights` must be finite, non-negative and sum to 1 "
                    f"(got sum {wn.sum():.6g}); normalise them, e.g. w / w.sum()."
                )
        w = jax.lax.stop_gradient(w)
    else:
        w = None

    x_model = jax.lax.stop_gradient(x_model)
    batched = jax.vmap(energy_fn, in_axes=(None, 0))
    e_data = batched(params, x_data)
    e_model = batched(params, x_model)
    if e_data.ndim != 1 or e_model.ndim != 1:
        raise ValueError(
            "`energy_fn` must return a scalar for one configuration; got per-example shape "
            f"{e_data.shape[1:]}. Reduce the module output (e.g. out.sum() or out[0])."
        )
    mean_data = jnp.mean(e_data)
    if w is None:
        mean_model = jnp.mean(e_model)
        sq_model = jnp.mean(e_model**2)
    else:
        # Zero-weight states may have infinite energy (hard constraints): drop them
        # explicitly, since 0 * inf is NaN.
        w = w.astype(e_model.dtype)
        keep = w > 0
        mean_model = jnp.sum(jnp.where(keep, w * e_model, 0.0))
        sq_model = jnp.sum(jnp.where(keep, w * e_model**2, 0.0))
    loss = mean_data - mean_model
    if not is_concrete(alpha) or alpha != 0.0:
        loss = loss + alpha * (jnp.mean(e_data**2) + sq_model)
    if not return_info:
        return loss
    bad_model = ~jnp.isfinite(e_model) if w is None else keep & ~jnp.isfinite(e_model)
    nonfinite = jnp.sum(~jnp.isfinite(e_data)) + jnp.sum(bad_model)
    info = ContrastiveDivergenceInfo(
        is_finite=jnp.isfinite(loss),
        num_nonfinite=nonfinite.astype(jnp.int32),
        energy_data=jax.lax.stop_gradient(mean_data),
        energy_model=jax.lax.stop_gradient(mean_model),
    )
    return loss, info
