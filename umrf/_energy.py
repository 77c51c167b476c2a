"""Energy-function transforms shared by every sampler and loss (DESIGN.md §1).

umrf's single convention is ``p(x | params) = exp(-E(params, x) / T) / Z``.
An energy function is a pure ``energy_fn(params, x) -> scalar`` on ONE
configuration; batch with ``jax.vmap`` at the call site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from umrf._bind import bind
from umrf._validation import check_callable, static_positive_scalar

EnergyFn = Callable[[Any, Any], jax.Array]


def _logdensity(params: Any, x: Any, *, energy_fn: EnergyFn, temperature: float) -> jax.Array:
    return -energy_fn(params, x) / temperature


def _score(params: Any, x: Any, *, energy_fn: EnergyFn, temperature: float) -> Any:
    grad = jax.grad(energy_fn, argnums=1)(params, x)
    return jax.tree_util.tree_map(lambda g: -g / temperature, grad)


def logdensity(energy_fn: EnergyFn, *, temperature: float = 1.0) -> EnergyFn:
    """Unnormalised log-density ``log p̃(x) = -E(params, x) / T``.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar`` on one configuration.
      temperature: keyword-only ``T > 0``.

    Returns:
      ``logdensity_fn(params, x) -> scalar``. Equal inputs give equal
      (value-comparable) functions, so samplers built on them compare equal.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> lp = umrf.logdensity(lambda p, x: 0.5 * jnp.sum(x**2), temperature=2.0)
      >>> float(lp(None, jnp.ones(2)))
      -0.5
    """
    check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    temperature = static_positive_scalar("temperature", temperature)
    return bind(_logdensity, energy_fn=energy_fn, temperature=temperature)


def score(energy_fn: EnergyFn, *, temperature: float = 1.0) -> EnergyFn:
    """Score ``s(x) = ∇ₓ log p(x) = -∇ₓ E(params, x) / T``.

    The score does not depend on the normaliser Z, which is why it drives
    Langevin dynamics and score matching (Hyvärinen 2005).

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar`` on one configuration.
      temperature: keyword-only ``T > 0``.

    Returns:
      ``score_fn(params, x)`` with the same pytree structure as ``x``.
      ``umrf.score(f) == umrf.score(f)``, so a sampler or loss rebuilt on it
      reuses compiled programs.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> s = umrf.score(lambda p, x: 0.5 * jnp.sum(x**2))
      >>> s(None, jnp.array([1.0, -2.0])).tolist()
      [-1.0, 2.0]
    """
    check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    temperature = static_positive_scalar("temperature", temperature)
    return bind(_score, energy_fn=energy_fn, temperature=temperature)
