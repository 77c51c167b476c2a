"""The continuous targets of the Langevin cases, with their exact noised scores.

* ``mixture2d``: 8 isotropic Gaussians (std 0.3) on a circle of radius 2,
  equal weights (``umrf.models.GaussianMixture``).
* ``gaussian``: a ``dim``-D Gaussian with a dense anisotropic precision
  ``Λ = Q diag(1/s²) Qᵀ`` (random rotation ``Q``, scales ``s`` from 0.3 to 3,
  seed 0; ``umrf.models.Gaussian``).
* ``isotropic``: ``E(x) = ½‖x‖²`` in ``dim``-D, whose gradient is nearly free,
  so a sampler's ratio to the noise-only ceiling measures its own overhead.

``score(x, σ)`` is the exact score of the target convolved with
``N(0, σ²I)`` (what a perfect noise-conditional model would return), used by
the annealed Langevin rows: for the mixture the components' variance becomes
``0.3² + σ²``; for the Gaussian the covariance becomes ``Q diag(s² + σ²) Qᵀ``;
for the isotropic target ``-x / (1 + σ²)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Target", "gaussian", "isotropic", "mixture2d"]


@dataclass(frozen=True)
class Target:
    """A Langevin target: ``energy(params, x)``, its ``params``, and the noised score."""

    name: str
    dim: int
    params: Any
    energy: Callable[[Any, jax.Array], jax.Array]
    score: Callable[[jax.Array, jax.Array], jax.Array]
    description: str


def model_energy(model: Any, x: jax.Array) -> jax.Array:
    """``model.energy(x)``: the energy of a umrf model that is its own params."""
    return model.energy(x)


def mixture2d() -> Target:
    """The 2-D mixture of 8 Gaussians on a circle."""
    import umrf

    angles = 2 * np.pi * np.arange(8) / 8
    means = jnp.asarray(2.0 * np.stack([np.cos(angles), np.sin(angles)], 1), jnp.float32)
    std = 0.3
    model = umrf.models.GaussianMixture.isotropic(jnp.full(8, 1 / 8), means, std)

    def score(x: jax.Array, sigma: jax.Array) -> jax.Array:
        var = std**2 + sigma**2
        diff = means - x[None, :]  # (8, 2)
        logits = -0.5 * jnp.sum(diff * diff, axis=1) / var
        return jax.nn.softmax(logits) @ diff / var

    return Target("mixture2d", 2, model, model_energy, score, "8 Gaussians (std 0.3) on a circle")


def gaussian(dim: int) -> Target:
    """A ``dim``-D Gaussian with a dense, anisotropic precision (scales 0.3 to 3)."""
    import umrf

    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    scales = np.geomspace(0.3, 3.0, dim)
    precision = (q / scales**2) @ q.T
    precision = 0.5 * (precision + precision.T)
    model = umrf.models.Gaussian(jnp.zeros(dim), jnp.asarray(precision, jnp.float32))
    qj = jnp.asarray(q, jnp.float32)
    var = jnp.asarray(scales**2, jnp.float32)

    def score(x: jax.Array, sigma: jax.Array) -> jax.Array:
        return -qj @ ((qj.T @ x) / (var + sigma**2))

    return Target("gaussian", dim, model, model_energy, score, f"{dim}-D Gaussian, dense precision")


def isotropic(dim: int) -> Target:
    """``E(x) = ½ λ‖x‖²`` with ``λ = 1`` (a traced leaf) in ``dim``-D."""

    def energy(params: Any, x: jax.Array) -> jax.Array:
        return 0.5 * params["precision"] * jnp.sum(x * x)

    def score(x: jax.Array, sigma: jax.Array) -> jax.Array:
        return -x / (1.0 + sigma**2)

    params = {"precision": jnp.float32(1.0)}
    return Target("isotropic", dim, params, energy, score, f"½‖x‖² in {dim}-D (free gradient)")
