"""Multivariate Gaussian energy with exact normaliser and exact sampling.

    E(x) = ½ (x - μ)ᵀ Λ (x - μ),      p(x) = exp(-E(x)/T) / Z(T),
    log Z(T) = (d/2) log(2πT) - ½ log det Λ.

At temperature ``T`` the law is ``N(μ, T Λ⁻¹)``. Exact samples use the
Cholesky factor ``Λ = L Lᵀ``: ``x = μ + sqrt(T) L⁻ᵀ z`` with ``z ~ N(0, I)``.

The model is a pytree whose leaves are ``mean`` and ``precision``; it is its
own ``params`` (DESIGN.md §6):
``umrf.samplers.mala(lambda m, x: m.energy(x), step_size=0.1)`` stepped with
``params=model``.

Reference: Bishop (2006), Pattern Recognition and Machine Learning, §2.3.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import check_finite, check_positive, is_concrete

__all__ = ["Gaussian"]


def check_spd(name: str, matrix: Any) -> None:
    """Raise ``ValueError`` unless a concrete ``matrix`` is symmetric positive definite."""
    if not is_concrete(matrix):
        return
    m = np.asarray(matrix, dtype=np.float64)
    if not np.all(np.isfinite(m)):
        raise ValueError(f"`{name}` contains NaN or infinite values; pass a finite matrix.")
    if not np.allclose(m, np.swapaxes(m, -1, -2), rtol=1e-5, atol=1e-6):
        raise ValueError(f"`{name}` must be symmetric; symmetrise it, e.g. (A + A.T) / 2.")
    if np.any(np.linalg.eigvalsh(m) <= 0):
        raise ValueError(
            f"`{name}` must be positive definite (all eigenvalues > 0); e.g. add a multiple of "
            "the identity."
        )


@jax.custom_jvp
def _half_quadratic(sym: jax.Array, r: jax.Array) -> jax.Array:
    """``½ rᵀ S r`` for a symmetric ``S``, with the derivative ``S r · dr + ½ rᵀ dS r``.

    Autodiff of the plain expression forms ``S r`` and, for the gradient,
    ``Sᵀ r`` again: two matrix-vector products (matrix-matrix under ``vmap``).
    For a symmetric ``S`` the gradient is ``S r``, already computed for the
    value, so a Langevin step's ``value_and_grad`` costs one product. The rule
    is made of differentiable operations, so Hessians (score matching) work.
    """
    return 0.5 * jnp.dot(r, jnp.dot(sym, r))


@_half_quadratic.defjvp
def _half_quadratic_jvp(
    primals: tuple[jax.Array, jax.Array], tangents: tuple[jax.Array, jax.Array]
) -> tuple[jax.Array, jax.Array]:
    (sym, r), (dsym, dr) = primals, tangents
    sr = jnp.dot(sym, r)
    return 0.5 * jnp.dot(r, sr), jnp.dot(sr, dr) + 0.5 * jnp.dot(r, jnp.dot(dsym, r))


def check_point(x: Any, dim: int, who: str) -> jax.Array:
    """``x`` as an array after checking it is ONE configuration of shape ``(dim,)``."""
    x = jnp.asarray(x)
    if x.shape != (dim,):
        raise ValueError(
            f"`x` of {who} must be ONE configuration of shape ({dim},); got shape {x.shape}. "
            "Batch with jax.vmap."
        )
    return x


@jax.tree_util.register_pytree_node_class
class Gaussian:
    """Gaussian energy ``E(x) = ½ (x - μ)ᵀ Λ (x - μ)`` (a pytree, its own params).

    Args:
      mean: ``μ``, shape ``(d,)``.
      precision: ``Λ``, shape ``(d, d)``, symmetric positive definite.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> g = umrf.models.Gaussian(jnp.zeros(2), jnp.eye(2))
      >>> round(float(g.log_partition()), 4)       # log(2π)
      1.8379
    """

    def __init__(self, mean: Any, precision: Any) -> None:
        mean = jnp.asarray(mean)
        precision = jnp.asarray(precision)
        if mean.ndim != 1:
            raise ValueError(f"`mean` must have shape (d,); got shape {mean.shape}.")
        d = mean.shape[0]
        if precision.shape != (d, d):
            raise ValueError(
                f"`precision` must have shape ({d}, {d}) to match `mean`; got {precision.shape}."
            )
        check_finite("mean", mean)
        check_spd("precision", precision)
        self.mean = mean
        self.precision = precision

    @classmethod
    def from_covariance(cls, mean: Any, covariance: Any) -> Gaussian:
        """Build from a covariance matrix ``Σ`` (``Λ = Σ⁻¹``)."""
        check_spd("covariance", covariance)
        return cls(mean, jnp.linalg.inv(jnp.asarray(covariance)))

    # pytree -------------------------------------------------------------
    def tree_flatten(self) -> tuple[tuple[Any, Any], None]:
        """Leaves ``(mean, precision)``; no static data."""
        return (self.mean, self.precision), None

    @classmethod
    def tree_unflatten(cls, aux: None, children: tuple[Any, Any]) -> Gaussian:
        """Rebuild without validation (leaves may be tracers)."""
        obj = object.__new__(cls)
        obj.mean, obj.precision = children
        return obj

    def __repr__(self) -> str:
        return f"Gaussian(dim={self.dim})"

    # model --------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Dimension ``d``."""
        return int(jnp.shape(self.mean)[0])

    @property
    def covariance(self) -> jax.Array:
        """``Σ = Λ⁻¹`` (covariance at temperature 1)."""
        return jnp.linalg.inv(self.precision)

    def energy(self, x: Any) -> jax.Array:
        """``E(x) = ½ (x - μ)ᵀ Λ (x - μ)`` for one ``x`` of shape ``(d,)``."""
        r = check_point(x, self.dim, "Gaussian.energy") - self.mean
        # Λ_s = (Λ + Λᵀ)/2 gives the same quadratic form exactly, and its gradient
        # is Λ_s r: one matrix-vector product for value and gradient (see _half_quadratic).
        return _half_quadratic(0.5 * (self.precision + self.precision.T), r)

    def log_partition(self, *, temperature: float = 1.0) -> jax.Array:
        """``log Z(T) = (d/2) log(2πT) - ½ log det Λ``."""
        check_positive("temperature", temperature)
        _, logdet = jnp.linalg.slogdet(self.precision)
        return 0.5 * self.dim * jnp.log(2.0 * math.pi * jnp.asarray(temperature)) - 0.5 * logdet

    def log_prob(self, x: Any, *, temperature: float = 1.0) -> jax.Array:
        """Normalised ``log p(x) = -E(x)/T - log Z(T)``."""
        return -self.energy(x) / temperature - self.log_partition(temperature=temperature)

    def sample(
        self, key: jax.Array, shape: tuple[int, ...] = (), *, temperature: float = 1.0
    ) -> Any:
        """Exact samples ``μ + sqrt(T) L⁻ᵀ z`` with ``Λ = L Lᵀ``; shape ``shape + (d,)``."""
        check_positive("temperature", temperature)
        shape = tuple(shape)
        z = jax.random.normal(key, (*shape, self.dim), jnp.result_type(self.mean))
        chol = jnp.linalg.cholesky(self.precision)
        # y = L⁻ᵀ z for every z: one triangular solve with Lᵀ on the stacked columns.
        y = jax.scipy.linalg.solve_triangular(chol.T, z.reshape(-1, self.dim).T, lower=False).T
        mean = jnp.reshape(self.mean, (1,) * len(shape) + (self.dim,))
        return mean + jnp.sqrt(jnp.asarray(temperature, y.dtype)) * y.reshape(z.shape)
