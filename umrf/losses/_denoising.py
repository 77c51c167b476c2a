"""Denoising score matching (Vincent 2011) and its multi-noise form (NCSN).

Perturbing data with Gaussian noise, ``x̃ = x + σ ε``, ``ε ∼ N(0, I)``, the
score of the perturbation kernel is ``∇ log q_σ(x̃ | x) = -(x̃ - x)/σ² = -ε/σ``.
Vincent (2011) shows that regressing ``s_θ(x̃)`` onto it,

    ℓ(θ; σ) = ½ E ‖s_θ(x̃) + ε/σ‖²,

equals, up to a constant, score matching against the smoothed density
``p_σ = p_data ∗ N(0, σ²I)``; its optimum is the score of ``p_σ``, not of
``p_data``. Song & Ermon (2019) train one noise-conditional network over a
geometric ladder ``σ_1 > … > σ_L`` with weights ``λ(σ) = σ²``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from umrf._loss_common import check_float_batch, finalize
from umrf._validation import (
    check_key,
    check_positive,
    check_positive_int,
    check_score_shape,
    is_concrete,
)


def _gaussian_like(key: jax.Array, x: Any) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(x)
    keys = jax.random.split(key, len(leaves))
    noise = [
        jax.random.normal(k, jnp.shape(leaf), jnp.result_type(leaf))
        for k, leaf in zip(keys, leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, noise)


def _sq_norm(tree: Any) -> jax.Array:
    return sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(tree))


def denoising_score_matching(
    score_fn: Callable[[Any, Any], Any],
    key: jax.Array,
    params: Any,
    x: Any,
    *,
    sigma: float,
    return_info: bool = False,
) -> Any:
    r"""Denoising score matching at one noise level.

    .. math::

       ℓ(θ; σ) = \frac1n \sum_i \tfrac12 \big\| s_θ(x_i + σ ε_i) + ε_i / σ \big\|²,
       \qquad ε_i ∼ N(0, I).

    For an energy model pass ``umrf.score(energy_fn)`` as ``score_fn``. The
    minimiser over all functions is ``∇ log (p_data ∗ N(0, σ²I))``: for
    Gaussian data ``N(μ, Σ)`` a Gaussian model's optimum has covariance
    ``Σ + σ² I``.

    Args:
      score_fn: ``score_fn(params, x)`` on one configuration, returning an
        object of the same structure as ``x``.
      key: PRNG key for the noise.
      params: pytree of parameters (differentiated).
      x: floating data batch with a leading batch axis.
      sigma: keyword-only noise standard deviation ``σ > 0``.
      return_info: keyword-only; also return a :class:`~umrf.losses.LossInfo`.

    Returns:
      Scalar batch mean, or ``(loss, LossInfo)``.

    Raises:
      ValueError: ``sigma <= 0`` or non-finite, empty or non-finite data.
      TypeError: integer data or a non-key ``key``.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> energy = lambda p, x: 0.5 * p * jnp.sum(x**2)
      >>> x = jax.random.normal(jax.random.key(0), (512, 2))
      >>> loss = umrf.losses.denoising_score_matching(
      ...     umrf.score(energy), jax.random.key(1), 1.0, x, sigma=0.5)
      >>> bool(jnp.isfinite(loss))
      True

    References:
      Vincent, *A connection between score matching and denoising
      autoencoders*, Neural Computation 23(7), 2011.
    """
    check_float_batch("x", x)
    check_key(key)
    check_positive("sigma", sigma)
    one = jax.tree_util.tree_map(lambda leaf: leaf[0], x)
    check_score_shape(jax.eval_shape(score_fn, params, one), one, "score_fn(params, x)")
    eps = _gaussian_like(key, x)

    def per_example(xi, ei):
        x_noisy = jax.tree_util.tree_map(lambda a, b: a + sigma * b, xi, ei)
        s = score_fn(params, x_noisy)
        return 0.5 * _sq_norm(jax.tree_util.tree_map(lambda a, b: a + b / sigma, s, ei))

    return finalize(jax.vmap(per_example)(x, eps), return_info)


def multiscale_denoising_score_matching(
    score_fn: Callable[[Any, Any, jax.Array], Any],
    key: jax.Array,
    params: Any,
    x: Any,
    *,
    sigmas: Any,
    return_info: bool = False,
) -> Any:
    r"""Noise-conditional (multi-noise) denoising score matching, ``λ(σ) = σ²``.

    .. math::

       L(θ) = \frac1n \sum_i \tfrac12 σ_{c_i}^2 \big\| s_θ(x_i + σ_{c_i} ε_i, σ_{c_i})
              + ε_i/σ_{c_i} \big\|²
            = \frac1n \sum_i \tfrac12 \big\| σ_{c_i} s_θ(\tilde x_i, σ_{c_i}) + ε_i \big\|²,

    with one noise level ``c_i ∼ Uniform{1..L}`` drawn per example, as in the
    NCSN reference code: an unbiased estimate of
    ``(1/L) Σ_l λ(σ_l) ℓ(θ; σ_l)`` (Song & Ermon 2019, eq. 6). The weight
    ``λ(σ) = σ²`` makes every level's term of order one.

    Args:
      score_fn: noise-conditional ``score_fn(params, x, sigma)`` on one
        configuration and a scalar ``sigma``.
      key: PRNG key for the noise levels and the noise.
      params: pytree of parameters (differentiated).
      x: floating data batch with a leading batch axis.
      sigmas: keyword-only 1-D array of noise levels ``> 0`` (e.g.
        :func:`geometric_sigmas`).
      return_info: keyword-only; also return a :class:`~umrf.losses.LossInfo`.

    Returns:
      Scalar batch mean, or ``(loss, LossInfo)``.

    Raises:
      ValueError: ``sigmas`` not 1-D, empty, or with an entry ``<= 0``;
        empty or non-finite data. TypeError: integer data or a non-key ``key``.

    References:
      Song & Ermon, *Generative modeling by estimating gradients of the data
      distribution*, NeurIPS 2019.
    """
    n = check_float_batch("x", x)
    check_key(key)
    sig = sigmas if isinstance(sigmas, jax.Array) else jnp.asarray(sigmas, dtype=jnp.float32)
    if sig.ndim != 1 or sig.shape[0] == 0:
        raise ValueError(
            f"`sigmas` must be a non-empty 1-D array of noise levels; got shape {sig.shape}. "
            "Use umrf.losses.geometric_sigmas(sigma_max, sigma_min, num)."
        )
    check_positive("sigmas", sig)
    one = jax.tree_util.tree_map(lambda leaf: leaf[0], x)
    check_score_shape(
        jax.eval_shape(score_fn, params, one, sig[0]), one, "score_fn(params, x, sigma)"
    )
    k_level, k_noise = jax.random.split(key)
    levels = jax.random.randint(k_level, (n,), 0, sig.shape[0])
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(x))
    sigma_batch = sig.astype(dtype)[levels]
    eps = _gaussian_like(k_noise, x)

    def per_example(xi, ei, s_i):
        x_noisy = jax.tree_util.tree_map(lambda a, b: a + s_i * b, xi, ei)
        s = score_fn(params, x_noisy, s_i)
        return 0.5 * _sq_norm(jax.tree_util.tree_map(lambda a, b: s_i * a + b, s, ei))

    return finalize(jax.vmap(per_example)(x, eps, sigma_batch), return_info)


def geometric_sigmas(sigma_max: float, sigma_min: float, num: int) -> jax.Array:
    r"""Geometric noise ladder ``σ_l = σ_max (σ_min/σ_max)^{(l-1)/(L-1)}``, largest first.

    The NCSN schedule (Song & Ermon 2019): consecutive ratios are constant,
    so neighbouring perturbed distributions overlap equally.

    Args:
      sigma_max: largest level ``> 0`` (about the largest pairwise distance
        in the data, Song & Ermon 2020).
      sigma_min: smallest level, ``0 < sigma_min <= sigma_max``.
      num: number of levels ``L >= 1`` (``L = 1`` needs ``sigma_min == sigma_max``).

    Returns:
      A float32 array of shape ``(num,)``, decreasing.

    Raises:
      ValueError: non-positive levels, ``sigma_min > sigma_max``, ``num < 1``.

    Examples:
      >>> import umrf
      >>> [round(float(s), 4) for s in umrf.losses.geometric_sigmas(1.0, 0.01, 3)]
      [1.0, 0.1, 0.01]
    """
    check_positive("sigma_max", sigma_max)
    check_positive("sigma_min", sigma_min)
    num = check_positive_int("num", num)
    if is_concrete((sigma_max, sigma_min)):
        if float(sigma_min) > float(sigma_max):
            raise ValueError(
                f"`sigma_min` ({sigma_min}) must not exceed `sigma_max` ({sigma_max}); swap them."
            )
        if num == 1 and not np.isclose(float(sigma_min), float(sigma_max)):
            raise ValueError(
                "`num` = 1 gives a single level: pass sigma_min == sigma_max or num >= 2."
            )
    return jnp.exp(jnp.linspace(jnp.log(sigma_max), jnp.log(sigma_min), num, dtype=jnp.float32))
