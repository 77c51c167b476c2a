"""Gaussian mixture with exact log-density, exact sampling and exact noised scores.

    p(x) = Σ_k w_k N(x; μ_k, Σ_k),        E(x) = -log p(x)

so ``exp(-E)`` is already normalised (``log Z = 0`` at ``T = 1``). The
log-density uses ``logsumexp`` over components and Cholesky factors of the
covariances. ``convolve(σ)`` returns the mixture of ``x + σ·n`` with
``n ~ N(0, I)`` (covariances ``Σ_k + σ²I``), whose score is the exact
noise-conditional score used by annealed Langevin dynamics
(Song & Ermon 2019).

Reference: Bishop (2006), Pattern Recognition and Machine Learning, §9.2.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import check_finite, check_positive, is_concrete
from umrf.models._gaussian import check_point, check_spd

__all__ = ["GaussianMixture"]


@jax.tree_util.register_pytree_node_class
class GaussianMixture:
    """Mixture ``Σ_k w_k N(μ_k, Σ_k)`` with energy ``E(x) = -log p(x)`` (a pytree).

    Args:
      weights: mixture weights ``w``, shape ``(K,)``, non-negative, summing to 1.
      means: ``μ``, shape ``(K, d)``.
      covariances: ``Σ``, shape ``(K, d, d)``, each symmetric positive definite.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> gm = umrf.models.GaussianMixture.isotropic([0.3, 0.7], [[-2.0, 0.0], [2.0, 0.0]], 0.5)
      >>> gm.sample(jax.random.key(0), 5).shape
      (5, 2)
    """

    def __init__(self, weights: Any, means: Any, covariances: Any) -> None:
        weights, means, covariances = map(jnp.asarray, (weights, means, covariances))
        if weights.ndim != 1:
            raise ValueError(f"`weights` must have shape (K,); got {weights.shape}.")
        k = weights.shape[0]
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"`means` must have shape ({k}, d); got {means.shape}.")
        d = means.shape[1]
        if covariances.shape != (k, d, d):
            raise ValueError(
                f"`covariances` must have shape ({k}, {d}, {d}); got {covariances.shape}."
            )
        check_finite("means", means)
        if is_concrete(weights):
            w = np.asarray(weights, dtype=np.float64)
            if not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1.0) > 1e-5:
                raise ValueError(
                    f"`weights` must be non-negative and sum to 1; got {w.tolist()}. "
                    "Normalise them: w / w.sum()."
                )
        check_spd("covariances", covariances)
        self.weights, self.means, self.covariances = weights, means, covariances

    @classmethod
    def isotropic(cls, weights: Any, means: Any, std: Any) -> GaussianMixture:
        """Mixture with covariances ``std_k² I`` (``std`` a scalar or shape ``(K,)``)."""
        means = jnp.asarray(means)
        check_positive("std", std)
        k, d = means.shape
        std = jnp.broadcast_to(jnp.asarray(std, means.dtype), (k,))
        eye = jnp.eye(d, dtype=means.dtype)
        return cls(weights, means, jnp.square(std)[:, None, None] * eye[None, :, :])

    # pytree -------------------------------------------------------------
    def tree_flatten(self) -> tuple[tuple[Any, Any, Any], None]:
        """Leaves ``(weights, means, covariances)``."""
        return (self.weights, self.means, self.covariances), None

    @classmethod
    def tree_unflatten(cls, aux: None, children: tuple[Any, Any, Any]) -> GaussianMixture:
        """Rebuild without validation (leaves may be tracers)."""
        obj = object.__new__(cls)
        obj.weights, obj.means, obj.covariances = children
        return obj

    def __repr__(self) -> str:
        return f"GaussianMixture(components={self.num_components}, dim={self.dim})"

    # model --------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Dimension ``d``."""
        return int(jnp.shape(self.means)[1])

    @property
    def num_components(self) -> int:
        """Number of components ``K``."""
        return int(jnp.shape(self.means)[0])

    def component_log_probs(self, x: Any) -> jax.Array:
        """``log w_k + log N(x; μ_k, Σ_k)`` for every component, shape ``(K,)``."""
        x = check_point(x, self.dim, "GaussianMixture.log_prob")
        # Whitening factors W_k = L_k⁻¹ (Σ_k = L_k L_kᵀ) and offsets c_k = W_k μ_k depend on
        # the parameters only, so under vmap over x they are computed once; the per-x work
        # y_k = W_k x - c_k is ONE (K·d, d) matrix-vector product, which vmap turns into a
        # matrix-matrix product over the batch (8x faster on CPU than per-sample solves).
        k, d = self.num_components, self.dim
        chol = jnp.linalg.cholesky(self.covariances)  # (K, d, d)
        eye = jnp.broadcast_to(jnp.eye(d, dtype=chol.dtype), chol.shape)
        whiten = jax.scipy.linalg.solve_triangular(chol, eye, lower=True)
        offset = jnp.einsum("kij,kj->ki", whiten, self.means)
        y = jnp.dot(whiten.reshape(k * d, d), x).reshape(k, d) - offset
        half_logdet = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        log_norm = -0.5 * jnp.sum(jnp.square(y), axis=-1) - half_logdet
        return jnp.log(self.weights) + log_norm - 0.5 * self.dim * math.log(2.0 * math.pi)

    def log_prob(self, x: Any) -> jax.Array:
        """Exact ``log p(x) = logsumexp_k [log w_k + log N(x; μ_k, Σ_k)]``."""
        return jax.nn.logsumexp(self.component_log_probs(x))

    def energy(self, x: Any) -> jax.Array:
        """``E(x) = -log p(x)`` (normalised: ``log Z = 0`` at ``T = 1``)."""
        return -self.log_prob(x)

    def score(self, x: Any) -> jax.Array:
        """``∇ₓ log p(x)``."""
        return jax.grad(self.log_prob)(x)

    def responsibilities(self, x: Any) -> jax.Array:
        """Posterior component probabilities ``p(k | x)``, shape ``(K,)``."""
        return jax.nn.softmax(self.component_log_probs(x))

    def convolve(self, sigma: Any) -> GaussianMixture:
        """The law of ``x + σ n``, ``n ~ N(0, I)``: covariances ``Σ_k + σ² I``."""
        eye = jnp.eye(self.dim, dtype=self.means.dtype)
        cov = self.covariances + jnp.square(jnp.asarray(sigma, self.means.dtype)) * eye[None]
        return GaussianMixture.tree_unflatten(None, (self.weights, self.means, cov))

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` exact samples, shape ``(n, d)`` (component, then Gaussian)."""
        key_c, key_z = jax.random.split(key)
        comp = jax.random.categorical(key_c, jnp.log(self.weights), shape=(n,))
        z = jax.random.normal(key_z, (n, self.dim), self.means.dtype)
        chol = jnp.linalg.cholesky(self.covariances)[comp]  # (n, d, d)
        return self.means[comp] + jnp.einsum("nij,nj->ni", chol, z)
