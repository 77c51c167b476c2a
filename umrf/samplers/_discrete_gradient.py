r"""Pieces shared by the gradient-informed discrete samplers (GWG, DULA, DMALA).

Both families estimate the change of the log-probability ``f(x) = -E(x)/T``
under a move from the gradient of a relaxed energy (``umrf.models.relaxation``):

* **binary** encoding (``num_categories=None``): flipping unit ``i`` of
  ``x ∈ {0, 1}^S`` changes ``f`` by about
  ``d̃_i = -∂E/∂x_i · (1 - 2 x_i) / T``;
* **categorical** (one-hot ``X``, ``num_categories=K`` or per-variable
  cardinalities): moving variable ``i`` from ``x_i`` to ``k`` changes ``f`` by
  about ``d̃_{ik} = -(∂E/∂X_{ik} - ∂E/∂X_{i,x_i}) / T`` (``d̃_{i,x_i} = 0``).

This module holds the encoding (a hashable static description), position
checks, the energy-and-gradient call and ``d̃``; the State and Info every such
sampler returns are defined here once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import check_num_categories, check_scalar_energy, is_concrete
from umrf.models import encode_states

__all__ = ["DiscreteGradientInfo", "DiscreteGradientState", "Encoding"]

EnergyFn = Callable[[Any, Any], jax.Array]


class DiscreteGradientState(NamedTuple):
    """State of one chain of a gradient-informed discrete sampler (GWG, DULA, DMALA).

    Attributes:
      position: the integer states ``x`` (``{0, 1}`` for binary encodings; the
        dtype of the initial position is kept).
      energy: ``E(params, encode(x))``, cached.
      energy_grad: ``∇E`` at the encoded ``x`` (the encoding's shape), cached.
    """

    position: jax.Array
    energy: jax.Array
    energy_grad: jax.Array


class DiscreteGradientInfo(NamedTuple):
    """Diagnostics of one step of GWG, DULA or DMALA.

    Attributes:
      acceptance_rate: Metropolis–Hastings acceptance probability of the
        proposal (1 for DULA unless the proposal has infinite energy).
      is_accepted: whether the chain moved to the proposal.
      diverged: True when the proposal's energy, gradient or log acceptance
        ratio was NaN (or the current state was not finite). A proposal of
        energy ``+inf`` (a hard zero) is an ordinary rejection, not a divergence.
    """

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    diverged: jax.Array


class Encoding(NamedTuple):
    """Static encoding: ``num_categories`` as normalised by ``check_num_categories``."""

    num_categories: int | tuple[int, ...] | None

    @property
    def binary(self) -> bool:
        """True for the binary encoding."""
        return self.num_categories is None

    @property
    def max_categories(self) -> int:
        """``K`` of the one-hot axis (2 for binary)."""
        nc = self.num_categories
        if nc is None:
            return 2
        return nc if isinstance(nc, int) else max(nc)

    def valid(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """``shape + (K,)`` mask of the categories each variable has (None: all of them)."""
        nc = self.num_categories
        if nc is None or isinstance(nc, int):
            return None
        cards = np.asarray(nc)
        return np.arange(max(nc))[None, :] < cards[:, None]

    def encode(self, x: jax.Array, dtype: Any) -> jax.Array:
        """The relaxed-energy input of states ``x``."""
        return encode_states(x, self.num_categories, dtype)


def make_encoding(num_categories: Any) -> Encoding:
    """Validate ``num_categories`` and return the static :class:`Encoding`."""
    return Encoding(check_num_categories(num_categories))


def float_dtype() -> Any:
    """JAX's default floating dtype (float64 under ``jax_enable_x64``)."""
    return jnp.zeros((), float).dtype


def check_position(x: Any, enc: Encoding) -> jax.Array:
    """Check one integer (or, binary only, 0/1 float) position; concrete values range-checked."""
    x = x if isinstance(x, jax.core.Tracer) else jnp.asarray(x)
    if enc.binary:
        if not (jnp.issubdtype(x.dtype, jnp.integer) or jnp.issubdtype(x.dtype, jnp.floating)):
            raise TypeError(f"`position` must be an int or float array of 0/1; got {x.dtype}.")
        if is_concrete(x) and not bool(np.all(np.isin(np.asarray(x), (0, 1)))):
            raise ValueError(
                "`position` must hold binary states 0/1 (num_categories=None); map spins with "
                "(s + 1) // 2, or pass num_categories=K for categorical states."
            )
        return x
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"`position` must be an int array of categories; got dtype {x.dtype}.")
    nc = enc.num_categories
    if isinstance(nc, tuple) and x.shape != (len(nc),):
        raise ValueError(
            f"`position` must have shape ({len(nc)},), one state per variable of "
            f"`num_categories`; got {x.shape}."
        )
    if is_concrete(x):
        arr = np.asarray(x)
        upper = np.asarray(nc) if isinstance(nc, tuple) else nc
        bad = (arr < 0) | (arr >= upper)
        if np.any(bad):
            i = tuple(int(a[0]) for a in np.nonzero(bad))
            raise ValueError(f"`position{list(i)}` = {int(arr[i])} is outside its categories.")
    return x


def in_range(x: jax.Array, enc: Encoding) -> jax.Array:
    """Traced check that ``x`` holds valid states (False makes the chain report divergence)."""
    if enc.binary:
        return jnp.all((x == 0) | (x == 1))
    nc = enc.num_categories
    upper = jnp.asarray(nc) if isinstance(nc, tuple) else nc
    return jnp.all((x >= 0) & (x < upper))


def energy_and_grad(
    energy_fn: EnergyFn, params: Any, x: jax.Array, enc: Encoding, dtype: Any
) -> tuple[jax.Array, jax.Array]:
    """``(E, ∇E)`` of the relaxed energy at the encoded states ``x``."""
    return jax.value_and_grad(energy_fn, argnums=1)(params, enc.encode(x, dtype))


def check_energy(energy_fn: EnergyFn, params: Any, x: jax.Array, enc: Encoding) -> None:
    """Shape-only check that the energy is a scalar of the encoded position."""
    check_scalar_energy(energy_fn, params, enc.encode(x, float_dtype()))


def first_order_gain(grad: jax.Array, x: jax.Array, enc: Encoding, temperature: Any) -> jax.Array:
    """``d̃``: first-order change of ``-E/T`` per flip (binary, shape ``S``) or move (``S × K``)."""
    if enc.binary:
        return -grad * (1.0 - 2.0 * x.astype(grad.dtype)) / temperature
    current = jnp.take_along_axis(grad, x[..., None].astype(jnp.int32), axis=-1)
    return -(grad - current) / temperature


def mask_invalid(logits: jax.Array, enc: Encoding, x_shape: tuple[int, ...]) -> jax.Array:
    """Set the logits of categories a variable does not have to ``-inf``."""
    valid = enc.valid(x_shape)
    if valid is None:
        return logits
    return jnp.where(valid, logits, -jnp.inf)


def init_state(position: Any, params: Any, energy_fn: EnergyFn, enc: Encoding):
    """The shared ``init``: check, then cache the energy and gradient."""
    x = check_position(position, enc)
    check_energy(energy_fn, params, x, enc)
    energy, grad = energy_and_grad(energy_fn, params, x, enc, float_dtype())
    energy = jnp.where(in_range(x, enc), energy, jnp.nan)
    return DiscreteGradientState(x, energy, grad)


def finite_tree(*xs: jax.Array) -> jax.Array:
    """True when every array is free of NaN (``±inf`` allowed: hard zeros are rejected)."""
    ok = jnp.ones((), bool)
    for a in xs:
        ok = ok & ~jnp.any(jnp.isnan(a))
    return ok
