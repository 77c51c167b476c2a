"""Kernel two-sample statistic (MMD) between sample sets."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from umrf._validation import check_positive

__all__ = ["mmd"]


def mmd(x: jax.Array, y: jax.Array, *, bandwidth: float | None = None) -> jax.Array:
    r"""Unbiased squared maximum mean discrepancy with a Gaussian (RBF) kernel.

    .. math::

       \widehat{\mathrm{MMD}}^2 = \frac{1}{m(m-1)}\sum_{i\ne j} k(x_i, x_j)
         + \frac{1}{n(n-1)}\sum_{i\ne j} k(y_i, y_j) - \frac{2}{mn}\sum_{i,j} k(x_i, y_j),
       \qquad k(a, b) = \exp\!\big(-‖a-b‖² / (2h²)\big).

    Zero in expectation iff the two distributions agree. A sample-quality
    figure is only meaningful next to its baseline: the same statistic
    between two independent data samples of the same sizes.

    Args:
      x: samples ``(m, d)``.
      y: samples ``(n, d)``, ``m, n >= 2``.
      bandwidth: keyword-only kernel width ``h > 0``; default: the median
        pairwise distance of the pooled samples (median heuristic).

    Returns:
      Scalar ``MMD²`` estimate (may be slightly negative).

    References:
      Gretton et al., *A kernel two-sample test*, JMLR 13, 2012.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"`x` and `y` must be (m, d) and (n, d); got {x.shape} and {y.shape}.")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("`x` and `y` need at least 2 samples each.")
    if bandwidth is not None:
        check_positive("bandwidth", bandwidth)
    dtype = jnp.result_type(x, y, jnp.float32)
    h = jnp.asarray(-1.0 if bandwidth is None else bandwidth, dtype)
    return _mmd(x.astype(dtype), y.astype(dtype), h)


def _sqdist(a: jax.Array, b: jax.Array) -> jax.Array:
    d = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
    return jnp.maximum(d, 0.0)


@jax.jit
def _mmd(x: jax.Array, y: jax.Array, h: jax.Array) -> jax.Array:
    """Jitted body of :func:`mmd`; ``h < 0`` selects the median heuristic."""
    dxx, dyy, dxy = _sqdist(x, x), _sqdist(y, y), _sqdist(x, y)
    pooled = jnp.concatenate([x, y])
    h2 = jnp.where(h > 0, h**2, jnp.median(_sqdist(pooled, pooled)))
    m, n = x.shape[0], y.shape[0]
    kxx = jnp.exp(-dxx / (2.0 * h2))
    kyy = jnp.exp(-dyy / (2.0 * h2))
    kxy = jnp.exp(-dxy / (2.0 * h2))
    sxx = (jnp.sum(kxx) - jnp.trace(kxx)) / (m * (m - 1))
    syy = (jnp.sum(kyy) - jnp.trace(kyy)) / (n * (n - 1))
    return sxx + syy - 2.0 * jnp.mean(kxy)
