"""Two-dimensional toy data sets for energy-based models, ``(key, n) -> (n, 2)``.

The usual 2-D benchmarks of the EBM / score-matching literature (e.g.
Grathwohl et al. 2019, "FFJORD"; Song & Ermon 2019): all are pure jit-able
JAX functions of a PRNG key, with ``n`` static (each is jitted internally,
so an eager call compiles once per ``n``).

* :func:`two_moons`: two interleaved half circles (as scikit-learn's
  ``make_moons``), shifted to be centred at the origin.
* :func:`rings`: points on concentric circles of radii 1, 2, 3, 4 (scaled by 0.75).
* :func:`checkerboard`: uniform on the dark squares of a 4×4 board on ``[-4, 4]²``.
* :func:`eight_gaussians`: eight equal Gaussians (std 0.1) on a circle of radius 2.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from umrf._validation import check_positive, check_positive_int

__all__ = ["checkerboard", "eight_gaussians", "rings", "two_moons"]


def _n(n: int) -> int:
    return check_positive_int("n", n)


def two_moons(key: jax.Array, n: int, *, noise: float = 0.1) -> jax.Array:
    """Two interleaving half circles plus Gaussian noise of std ``noise``.

    Upper moon ``(cos t, sin t)``, lower moon ``(1 - cos t, 0.5 - sin t)``,
    ``t ~ U[0, π]``, then centred by ``(-0.5, -0.25)``.

    Args:
      key: PRNG key.
      n: number of points (half in each moon, the first moon gets the extra one).
      noise: std of the isotropic Gaussian noise (``>= 0``).

    Returns:
      Array of shape ``(n, 2)``.
    """
    n = _n(n)
    check_positive("noise", noise, allow_zero=True)
    return _two_moons(key, n, noise)


@functools.partial(jax.jit, static_argnums=1)
def _two_moons(key: jax.Array, n: int, noise: Any) -> jax.Array:
    k_t, k_side, k_z = jax.random.split(key, 3)
    t = jax.random.uniform(k_t, (n,), maxval=math.pi)
    lower = jnp.arange(n) >= (n + 1) // 2
    lower = jax.random.permutation(k_side, lower)
    x = jnp.where(lower, 1.0 - jnp.cos(t), jnp.cos(t))
    y = jnp.where(lower, 0.5 - jnp.sin(t), jnp.sin(t))
    pts = jnp.stack([x - 0.5, y - 0.25], axis=1)
    return pts + noise * jax.random.normal(k_z, (n, 2))


def rings(key: jax.Array, n: int, *, noise: float = 0.08) -> jax.Array:
    """Four concentric circles of radii ``0.75·{1, 2, 3, 4}``, points in proportion to length.

    Args:
      key: PRNG key.
      n: number of points.
      noise: std of the isotropic Gaussian noise (``>= 0``).

    Returns:
      Array of shape ``(n, 2)``.
    """
    n = _n(n)
    check_positive("noise", noise, allow_zero=True)
    return _rings(key, n, noise)


@functools.partial(jax.jit, static_argnums=1)
def _rings(key: jax.Array, n: int, noise: Any) -> jax.Array:
    k_r, k_t, k_z = jax.random.split(key, 3)
    radii = 0.75 * jnp.arange(1.0, 5.0)
    ring = jax.random.categorical(k_r, jnp.log(radii / jnp.sum(radii)), shape=(n,))
    theta = jax.random.uniform(k_t, (n,), maxval=2.0 * math.pi)
    r = radii[ring]
    pts = jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta)], axis=1)
    return pts + noise * jax.random.normal(k_z, (n, 2))


def checkerboard(key: jax.Array, n: int) -> jax.Array:
    """Uniform on the 8 dark unit-2 squares of a 4×4 checkerboard on ``[-4, 4]²``.

    A square ``[2i - 4, 2i - 2] × [2j - 4, 2j - 2]`` is dark when ``i + j`` is even.

    Args:
      key: PRNG key.
      n: number of points.

    Returns:
      Array of shape ``(n, 2)``.
    """
    return _checkerboard(key, _n(n))


@functools.partial(jax.jit, static_argnums=1)
def _checkerboard(key: jax.Array, n: int) -> jax.Array:
    k_sq, k_u = jax.random.split(key)
    square = jax.random.randint(k_sq, (n,), 0, 8)
    i = square // 2  # column 0..3
    j = 2 * (square % 2) + (i % 2)  # row with i + j even
    corner = jnp.stack([2.0 * i - 4.0, 2.0 * j - 4.0], axis=1)
    return corner + 2.0 * jax.random.uniform(k_u, (n, 2))


def eight_gaussians(key: jax.Array, n: int, *, radius: float = 2.0, std: float = 0.1) -> jax.Array:
    """Equal mixture of 8 Gaussians of std ``std`` centred on a circle of ``radius``.

    Centres ``radius · (cos(2πk/8), sin(2πk/8))``, ``k = 0..7``.

    Args:
      key: PRNG key.
      n: number of points.
      radius: circle radius (``> 0``).
      std: component std (``>= 0``).

    Returns:
      Array of shape ``(n, 2)``.
    """
    n = _n(n)
    check_positive("radius", radius)
    check_positive("std", std, allow_zero=True)
    return _eight_gaussians(key, n, radius, std)


@functools.partial(jax.jit, static_argnums=1)
def _eight_gaussians(key: jax.Array, n: int, radius: Any, std: Any) -> jax.Array:
    k_c, k_z = jax.random.split(key)
    comp = jax.random.randint(k_c, (n,), 0, 8)
    angle = 2.0 * math.pi * comp / 8.0
    centres = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    return centres + std * jax.random.normal(k_z, (n, 2))
