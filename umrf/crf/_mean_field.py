r"""Grid CRF with Gaussian and bilateral pairwise kernels; mean field as a recurrent net.

Energy of a labelling ``x`` of an ``H × W`` image with ``C`` labels
(Krähenbühl & Koltun 2011, with the pairwise sum truncated to a local window):

.. math::

    E(x) = -\sum_i z_i(x_i) + \tfrac12 \sum_i \sum_{d \in D} k(i, i+d)\, μ(x_i, x_{i+d}),

* ``z = unary_logits``: the network's per-pixel scores; the unary potential
  is ``ψ_u(x_i) = -z_i(x_i)`` (so without pairwise terms ``p(x_i) =
  softmax(z_i)``), i.e. umrf's convention ``p(x) ∝ exp(-E(x))``.
* ``D`` is the ``(2r+1)² - 1`` offsets of the window of radius ``r``
  (``radius``) and only pairs inside the image count; the ``½`` counts each
  unordered pair once.
* ``k(i, j) = w_s exp(-|p_i - p_j|²/2θ_γ²) + w_b exp(-|p_i - p_j|²/2θ_α² - |I_i - I_j|²/2θ_β²)``,
  a spatial (smoothness) Gaussian kernel plus a bilateral (appearance) kernel
  on pixel positions ``p`` and image features ``I`` (:class:`GridKernels`).
* ``μ = compatibility`` ``(C, C)``: Potts ``μ(a, b) = [a ≠ b]``
  (:func:`potts_compatibility`) or a learned matrix. Only its symmetric part
  ``μ_s = (μ + μᵀ)/2`` enters the energy.

Mean-field inference minimises the variational free energy
``F(q) = E_q[E] - H(q) ≥ -log Z`` over factorised ``q(x) = Π_i q_i(x_i)``;
its coordinate update (applied to all pixels in parallel, as in CRF-as-RNN,
Zheng et al. 2015) is

.. math::

    q_i(l) \propto \exp\Big(z_i(l)
        - \sum_{d \in D} k(i, i+d) \sum_{l'} μ_s(l, l')\, q_{i+d}(l')\Big).

Every operation is an array shift, a multiply and a softmax: no ``N × N``
matrix is formed (the memory is ``O(|D| H W)`` for the cached kernel values),
the loop is a ``lax.scan`` over iterations, everything is differentiable in
the logits, the image, the compatibility and the kernel parameters, and it
runs unchanged on GPU.

References:
  P. Krähenbühl, V. Koltun. Efficient inference in fully connected CRFs with
  Gaussian edge potentials. NeurIPS 2011.

  S. Zheng, S. Jayasumana, B. Romera-Paredes, V. Vineet, Z. Su, D. Du,
  C. Huang, P. H. S. Torr. Conditional random fields as recurrent neural
  networks. ICCV 2015.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import check_finite, check_positive, check_positive_int

__all__ = [
    "GridKernels",
    "grid_crf_energy",
    "grid_mean_field",
    "grid_mean_field_free_energy",
    "grid_mean_field_update",
    "potts_compatibility",
]


class GridKernels(NamedTuple):
    """Learnable pairwise-kernel parameters of the grid CRF (a pytree of scalars).

    ``k(i, j) = spatial_weight · exp(-|Δp|²/2 spatial_bandwidth²)
    + bilateral_weight · exp(-|Δp|²/2 bilateral_spatial_bandwidth²
    - |ΔI|²/2 bilateral_color_bandwidth²)``, with ``Δp`` in pixels and ``ΔI``
    in the units of the ``image`` features. Weights must be ``>= 0`` and
    bandwidths ``> 0``; to learn them unconstrained, store their logarithms
    and pass ``GridKernels(*map(jnp.exp, log_params))``.
    """

    spatial_weight: jax.Array | float = 1.0
    spatial_bandwidth: jax.Array | float = 1.0
    bilateral_weight: jax.Array | float = 1.0
    bilateral_spatial_bandwidth: jax.Array | float = 2.0
    bilateral_color_bandwidth: jax.Array | float = 0.1


def potts_compatibility(num_labels: int, dtype=jnp.float32) -> jax.Array:
    """Potts label compatibility ``μ(a, b) = 1 - [a = b]`` of shape ``(C, C)``."""
    num_labels = check_positive_int("num_labels", num_labels)
    return 1.0 - jnp.eye(num_labels, dtype=dtype)


def _offsets(radius: int) -> list[tuple[int, int]]:
    return [
        (dy, dx)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if (dy, dx) != (0, 0)
    ]


def _shift(x: jax.Array, dy: int, dx: int, radius: int) -> jax.Array:
    """``out[..., i, j, :] = x[..., i+dy, j+dx, :]`` (zero outside), ``x`` padded by ``radius``."""
    H, W = x.shape[-3] - 2 * radius, x.shape[-2] - 2 * radius
    return x[..., radius + dy : radius + dy + H, radius + dx : radius + dx + W, :]


def _pad(x: jax.Array, radius: int) -> jax.Array:
    widths = [(0, 0)] * (x.ndim - 3) + [(radius, radius), (radius, radius), (0, 0)]
    return jnp.pad(x, widths)


def _pairwise_weights(image: jax.Array, kernels: GridKernels, radius: int) -> jax.Array:
    """Kernel values ``k(i, i+d)`` for every offset: ``(|D|, ..., H, W, 1)``, zero off-image."""
    dtype = image.dtype
    inside = _pad(jnp.ones(image.shape[:-1] + (1,), dtype), radius)
    padded = _pad(image, radius)
    ws, ts, wb, ta, tb = (jnp.asarray(v, dtype) for v in kernels)
    out = []
    for dy, dx in _offsets(radius):
        d2 = float(dy * dy + dx * dx)
        diff = image - _shift(padded, dy, dx, radius)
        c2 = jnp.sum(diff * diff, axis=-1, keepdims=True)
        k = ws * jnp.exp(-d2 / (2.0 * ts**2)) + wb * jnp.exp(
            -d2 / (2.0 * ta**2) - c2 / (2.0 * tb**2)
        )
        out.append(k * _shift(inside, dy, dx, radius))
    return jnp.stack(out)


def _shift_sum(q: jax.Array, weights: jax.Array, radius: int) -> jax.Array:
    """``Σ_d weights[d] * shift_d(q)`` (unrolled over the static offsets: XLA fuses it)."""
    qp = _pad(q, radius)
    total = jnp.zeros_like(q)
    for n, (dy, dx) in enumerate(_offsets(radius)):
        total = total + weights[n] * _shift(qp, dy, dx, radius)
    return total


def _shift_sum_scan(q: jax.Array, weights: jax.Array, radius: int) -> jax.Array:
    """Same as :func:`_shift_sum` as a ``lax.scan`` over offsets (smaller programs)."""
    qp = _pad(q, radius)
    lead = jnp.zeros(q.ndim - 3, jnp.int32)

    def body(total, xs):
        w, off = xs
        start = jnp.concatenate([lead, off + radius, jnp.zeros(1, jnp.int32)])
        return total + w * jax.lax.dynamic_slice(qp, start, q.shape), None

    offs = jnp.asarray(_offsets(radius), jnp.int32)
    total, _ = jax.lax.scan(body, jnp.zeros_like(q), (weights, offs))
    return total


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _message(q: jax.Array, weights: jax.Array, radius: int) -> jax.Array:
    """``m_i(l') = Σ_d k(i, i+d) q_{i+d}(l')`` by shifted copies of ``q``.

    The reverse pass is written by hand: the operator is self-adjoint because
    ``k(i, i+d) = k(i+d, i)`` (both kernels are symmetric and the off-image
    masks match), so ``q̄ = Σ_d k(·, ·+d) shift_d(m̄)`` reuses the forward
    shifts instead of autodiff's scatter-adds (several times faster on CPU).
    """
    return _shift_sum(q, weights, radius)


def _message_fwd(q, weights, radius):
    return _shift_sum(q, weights, radius), (q, weights)


def _message_bwd(radius, res, g):
    q, weights = res
    qp = _pad(q, radius)
    lead = jnp.zeros(q.ndim - 3, jnp.int32)

    def weight_grad(off):
        start = jnp.concatenate([lead, off + radius, jnp.zeros(1, jnp.int32)])
        return jnp.sum(g * jax.lax.dynamic_slice(qp, start, q.shape), axis=-1, keepdims=True)

    gw = jax.lax.map(weight_grad, jnp.asarray(_offsets(radius), jnp.int32))
    return _shift_sum_scan(g, weights, radius), gw


_message.defvjp(_message_fwd, _message_bwd)


def _validate(unary_logits, compatibility, kernels, image, radius):
    unary_logits = jnp.asarray(unary_logits)
    image = jnp.asarray(image)
    compatibility = jnp.asarray(compatibility)
    if unary_logits.ndim < 3:
        raise ValueError(
            "`unary_logits` must have shape (..., H, W, C) (any leading batch axes); "
            f"got {unary_logits.shape}."
        )
    if not jnp.issubdtype(unary_logits.dtype, jnp.floating):
        raise TypeError(f"`unary_logits` must be floating point; got {unary_logits.dtype}.")
    if image.ndim == unary_logits.ndim - 1:
        image = image[..., None]  # grey-scale (..., H, W) -> (..., H, W, 1)
    if image.shape[:-1] != unary_logits.shape[:-1]:
        raise ValueError(
            f"`image` must have shape (..., H, W, F) matching `unary_logits` (..., H, W, C) = "
            f"{unary_logits.shape} in all but the last axis; got {image.shape}."
        )
    C = unary_logits.shape[-1]
    if compatibility.shape != (C, C):
        raise ValueError(
            f"`compatibility` must have shape (C, C) = ({C}, {C}); got {compatibility.shape}. "
            "Use umrf.crf.potts_compatibility(C) for the Potts model."
        )
    if not isinstance(kernels, GridKernels):
        raise TypeError(f"`kernels` must be a umrf.crf.GridKernels; got {type(kernels).__name__}.")
    for name in ("spatial_weight", "bilateral_weight"):
        check_positive(f"kernels.{name}", getattr(kernels, name), allow_zero=True)
    for name in ("spatial_bandwidth", "bilateral_spatial_bandwidth", "bilateral_color_bandwidth"):
        check_positive(f"kernels.{name}", getattr(kernels, name))
    radius = check_positive_int("radius", radius)
    H, W = unary_logits.shape[-3:-1]
    if radius >= max(H, W):
        raise ValueError(
            f"`radius` = {radius} reaches beyond the {H}×{W} image (no pixel pair is more than "
            f"{max(H, W) - 1} apart along an axis); pass radius <= {max(H, W) - 1}. The cost "
            "grows with (2·radius + 1)²."
        )
    check_finite("unary_logits", unary_logits)
    check_finite("image", image)
    check_finite("compatibility", compatibility)
    dtype = unary_logits.dtype
    return unary_logits, image.astype(dtype), compatibility.astype(dtype), radius


def grid_mean_field_update(
    unary_logits: jax.Array,
    compatibility: jax.Array,
    kernels: GridKernels,
    image: jax.Array,
    q: jax.Array,
    *,
    radius: int = 2,
) -> jax.Array:
    """One parallel mean-field update ``q ↦ softmax(z - (Σ_d k_d · shift_d(q)) μ_s)``.

    Args:
      unary_logits: ``(..., H, W, C)``.
      compatibility: ``(C, C)`` label compatibility ``μ``.
      kernels: :class:`GridKernels`.
      image: ``(..., H, W, F)`` or ``(..., H, W)`` kernel features.
      q: ``(..., H, W, C)`` current marginals.
      radius: keyword-only window radius ``r`` (``1 <= r < max(H, W)``).

    Returns:
      ``(..., H, W, C)`` updated marginals.
    """
    z, image, mu, radius = _validate(unary_logits, compatibility, kernels, image, radius)
    weights = _pairwise_weights(image, kernels, radius)
    return jax.nn.softmax(_refine(z, q, weights, 0.5 * (mu + mu.T), radius), axis=-1)


def _refine(z, q, weights, mu_sym, radius):
    return z - jnp.matmul(_message(q, weights, radius), mu_sym)


def grid_mean_field(
    unary_logits: jax.Array,
    compatibility: jax.Array,
    kernels: GridKernels,
    image: jax.Array,
    *,
    num_iters: int = 5,
    radius: int = 2,
) -> jax.Array:
    r"""Mean-field inference in a grid CRF, unrolled as a recurrent network (CRF-as-RNN).

    Starts at ``q⁰ = softmax(z)`` and applies ``num_iters`` parallel updates
    ``q^{t+1}_i(l) ∝ exp(z_i(l) - Σ_d k(i, i+d) Σ_{l'} μ_s(l, l') q^t_{i+d}(l'))``
    (module docstring; Krähenbühl & Koltun 2011, Zheng et al. 2015).

    Args:
      unary_logits: ``(..., H, W, C)`` network scores ``z`` (any leading batch
        axes, e.g. ``(B, H, W, C)``); the unary potential is ``-z``.
      compatibility: ``(C, C)`` label compatibility ``μ`` (Potts:
        :func:`potts_compatibility`); learned matrices are symmetrised.
      kernels: :class:`GridKernels` weights and bandwidths (traced, learnable).
      image: ``(..., H, W, F)`` (or ``(..., H, W)``) features for the bilateral
        kernel, e.g. RGB values.
      num_iters: keyword-only number of mean-field iterations (static Python
        int, ``>= 0``).
      radius: keyword-only window radius ``r`` of the truncated kernels
        (static, ``1 <= r < max(H, W)``).

    Returns:
      ``(..., H, W, C)`` refined logits whose softmax is the mean-field
      marginal ``q`` (pass them to a cross-entropy loss or take their argmax).
      With ``num_iters = 0`` they equal ``unary_logits``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from umrf.crf import GridKernels, grid_mean_field, potts_compatibility
      >>> z = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
      >>> img = jnp.zeros((2, 8, 8, 3))
      >>> out = grid_mean_field(z, potts_compatibility(3), GridKernels(), img, num_iters=3)
      >>> out.shape
      (2, 8, 8, 3)
    """
    num_iters = check_positive_int("num_iters", num_iters, allow_zero=True)
    z, image, mu, radius = _validate(unary_logits, compatibility, kernels, image, radius)
    if num_iters == 0:
        return z
    weights = _pairwise_weights(image, kernels, radius)
    mu_sym = 0.5 * (mu + mu.T)

    def body(logits, _):
        return _refine(z, jax.nn.softmax(logits, axis=-1), weights, mu_sym, radius), None

    logits, _ = jax.lax.scan(body, z, None, length=num_iters)
    return logits


def grid_crf_energy(
    unary_logits: jax.Array,
    compatibility: jax.Array,
    kernels: GridKernels,
    image: jax.Array,
    labels: jax.Array,
    *,
    radius: int = 2,
) -> jax.Array:
    """Energy ``E(x)`` of integer labellings (module docstring), one value per image.

    Args:
      unary_logits: ``(..., H, W, C)``.
      compatibility: ``(C, C)``.
      kernels: :class:`GridKernels`.
      image: ``(..., H, W, F)`` or ``(..., H, W)``.
      labels: ``(..., H, W)`` integer labels in ``[0, C)``. Concrete labels
        outside that range raise; traced ones give a NaN energy.
      radius: keyword-only window radius.

    Returns:
      ``(...)`` energies.
    """
    z = jnp.asarray(unary_logits)
    C = z.shape[-1]
    labels = labels if isinstance(labels, jax.core.Tracer) else jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"`labels` must be integer class labels; got dtype {labels.dtype}.")
    if labels.shape != z.shape[:-1]:
        raise ValueError(
            f"`labels` must have shape {z.shape[:-1]} (the logits' shape without the label "
            f"axis); got {labels.shape}."
        )
    if not isinstance(labels, jax.core.Tracer) and bool(jnp.any((labels < 0) | (labels >= C))):
        raise ValueError(f"`labels` must lie in 0..{C - 1}; got values outside that range.")
    onehot = jax.nn.one_hot(labels, C, dtype=z.dtype)
    energy = _expected_energy(unary_logits, compatibility, kernels, image, onehot, radius)
    valid = jnp.all((labels >= 0) & (labels < C), axis=(-2, -1))
    return jnp.where(valid, energy, jnp.nan)


def _expected_energy(unary_logits, compatibility, kernels, image, q, radius):
    z, image, mu, radius = _validate(unary_logits, compatibility, kernels, image, radius)
    weights = _pairwise_weights(image, kernels, radius)
    unary = -jnp.sum(q * z, axis=(-3, -2, -1))
    pair = 0.5 * jnp.sum(q * jnp.matmul(_message(q, weights, radius), mu.T), axis=(-3, -2, -1))
    return unary + pair


def grid_mean_field_free_energy(
    unary_logits: jax.Array,
    compatibility: jax.Array,
    kernels: GridKernels,
    image: jax.Array,
    q: jax.Array,
    *,
    radius: int = 2,
) -> jax.Array:
    r"""Variational free energy ``F(q) = E_q[E] - H(q)`` of a factorised ``q``.

    ``F(q) = -log Z + KL(q ‖ p) ≥ -log Z`` (Gibbs' inequality), with equality
    iff ``q = p``; mean field decreases it coordinate-wise.

    Args:
      unary_logits: ``(..., H, W, C)``.
      compatibility: ``(C, C)``.
      kernels: :class:`GridKernels`.
      image: ``(..., H, W, F)`` or ``(..., H, W)``.
      q: ``(..., H, W, C)`` marginals (rows sum to one).
      radius: keyword-only window radius.

    Returns:
      ``(...)`` free energies.
    """
    q = jnp.asarray(q)
    energy = _expected_energy(unary_logits, compatibility, kernels, image, q, radius)
    entropy = -jnp.sum(jnp.where(q > 0, q * jnp.log(jnp.where(q > 0, q, 1.0)), 0.0), (-3, -2, -1))
    return energy - entropy


def dense_window_kernel(image: np.ndarray, kernels: GridKernels, radius: int) -> np.ndarray:
    """Dense ``(HW, HW)`` kernel matrix of one ``(H, W, F)`` image (for tests and teaching).

    ``K[i, j] = k(i, j)`` if ``j ≠ i`` lies in the window of ``i``, else 0.
    Quadratic memory: only for tiny images.
    """
    image = np.asarray(image, np.float64)
    H, W, _ = image.shape
    ws, ts, wb, ta, tb = (float(v) for v in kernels)
    pos = np.stack(np.meshgrid(np.arange(H), np.arange(W), indexing="ij"), -1).reshape(-1, 2)
    feat = image.reshape(H * W, -1)
    dp = pos[:, None, :] - pos[None, :, :]
    d2 = np.sum(dp**2, -1).astype(np.float64)
    c2 = np.sum((feat[:, None, :] - feat[None, :, :]) ** 2, -1)
    k = ws * np.exp(-d2 / (2 * ts**2)) + wb * np.exp(-d2 / (2 * ta**2) - c2 / (2 * tb**2))
    window = (np.max(np.abs(dp), -1) <= radius) & (d2 > 0)
    return np.where(window, k, 0.0)
