r"""Fréchet distance between sample sets, in a PCA feature space.

The Fréchet (2-Wasserstein) distance between the Gaussians fitted to two
sample sets (the statistic behind FID, Heusel et al. 2017) is

.. math::

   d^2 = \|μ_x - μ_y\|^2 + \operatorname{tr}\big(Σ_x + Σ_y
         - 2 (Σ_x^{1/2} Σ_y Σ_x^{1/2})^{1/2}\big)

with sample means ``μ`` and covariances ``Σ`` (``n - 1`` normalisation).
FID computes it on Inception features; for small images a principal-component
space of the data is the natural feature space: :func:`pca` fits one (on the
training data, say) and :func:`frechet_distance` takes ``projection=`` to use
it. The estimate is biased upwards at finite sample sizes, so compare it with
the same figure between two data samples of the same sizes (train vs test).

Computed on the host in float64 with numpy (symmetric eigendecompositions),
which keeps the matrix square root accurate for nearly singular covariances.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["PCA", "frechet_distance", "pca"]


class PCA(NamedTuple):
    """A principal-component projection ``z = (x - mean) @ components.T``.

    Attributes:
      mean: ``(d,)`` mean of the fitted data (flattened samples).
      components: ``(q, d)`` orthonormal principal directions, largest variance first.
      explained_variance: ``(q,)`` variance along each direction.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray

    def transform(self, x: Any) -> np.ndarray:
        """Project samples ``(n, ...)`` onto the components: ``(n, q)``."""
        flat = _flat("x", x)
        if flat.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"`x` has {flat.shape[1]} features per sample; this PCA was fitted on "
                f"{self.mean.shape[0]}."
            )
        return (flat - self.mean) @ self.components.T


def _flat(name: str, x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 2 or a.shape[0] < 2:
        raise ValueError(f"`{name}` must be (n, ...) samples with n >= 2; got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` contains NaN or infinite values; pass finite samples.")
    return a.reshape(a.shape[0], -1)


def pca(x: Any, num_components: int) -> PCA:
    """Fit a principal-component projection to samples ``x`` (SVD of the centred data).

    Args:
      x: ``(n, ...)`` samples (flattened per sample).
      num_components: number ``q`` of components, ``1 <= q <= min(n, d)``.

    Returns:
      :class:`PCA`; ``pca(x, q).transform(y)`` projects new samples.

    Examples:
      >>> import numpy as np, umrf
      >>> x = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
      >>> p = umrf.metrics.pca(x, 1)
      >>> np.abs(p.components).tolist(), p.explained_variance.round(6).tolist()
      ([[1.0, 0.0]], [2.666667])
    """
    flat = _flat("x", x)
    n, d = flat.shape
    if not isinstance(num_components, int | np.integer) or not 1 <= num_components <= min(n, d):
        raise ValueError(
            f"`num_components` must be an int in 1..{min(n, d)} (min of samples and "
            f"features); got {num_components!r}."
        )
    mean = flat.mean(0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    q = int(num_components)
    return PCA(mean, vt[:q], s[:q] ** 2 / (n - 1))


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(x: Any, y: Any, *, projection: PCA | None = None) -> float:
    r"""Fréchet distance ``d²`` between Gaussians fitted to ``x`` and ``y`` (module docstring).

    Args:
      x: ``(n, ...)`` samples, ``n >= 2``.
      y: ``(m, ...)`` samples with the same per-sample size.
      projection: keyword-only :class:`PCA` applied to both sets first
        (e.g. ``umrf.metrics.pca(x_train, 20)``); ``None`` uses the raw features.

    Returns:
      ``d²`` as a float (``>= 0`` up to rounding).

    Examples:
      >>> import numpy as np, umrf
      >>> x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
      >>> round(umrf.metrics.frechet_distance(x, x + 1.0), 6)  # a shift: ‖Δμ‖² = 2
      2.0
      >>> round(umrf.metrics.frechet_distance(x, 2.0 * x), 6)  # μ (1,1)→(2,2), σ 1.155→2.309
      4.666667

    References:
      Fréchet, *Sur la distance de deux lois de probabilité*, 1957. Dowson &
      Landau, *The Fréchet distance between multivariate normal distributions*,
      J. Multivariate Anal. 1982. Heusel et al., *GANs trained by a two
      time-scale update rule converge to a local Nash equilibrium*, NeurIPS 2017.
    """
    fx, fy = _flat("x", x), _flat("y", y)
    if fx.shape[1] != fy.shape[1]:
        raise ValueError(
            f"`x` and `y` must have the same number of features per sample; got {fx.shape[1]} "
            f"and {fy.shape[1]}."
        )
    if projection is not None:
        if not isinstance(projection, PCA):
            raise TypeError(
                f"`projection` must be a umrf.metrics.PCA (from umrf.metrics.pca); got "
                f"{type(projection).__name__}."
            )
        fx, fy = projection.transform(fx), projection.transform(fy)
    mx, my = fx.mean(0), fy.mean(0)
    cx = np.atleast_2d(np.cov(fx, rowvar=False))
    cy = np.atleast_2d(np.cov(fy, rowvar=False))
    root_x = _sqrtm_psd(cx)
    cross = _sqrtm_psd(root_x @ cy @ root_x)
    return float(np.sum((mx - my) ** 2) + np.trace(cx) + np.trace(cy) - 2.0 * np.trace(cross))
