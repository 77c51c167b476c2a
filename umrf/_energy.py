"""Energy-function transforms shared by every sampler and loss (DESIGN.md §1).

umrf's single convention is ``p(x | params) = exp(-E(params, x) / T) / Z``.
An energy function is a pure ``energy_fn(params, x) -> scalar`` on ONE
configuration; batch with ``jax.vmap`` at the call site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from umrf._validation import check_positive

EnergyFn = Callable[[Any, Any], jax.Array]


def logdensity(energy_fn: EnergyFn, temperature: float = 1.0) -> EnergyFn:
    """Unnormalised log-density ``log p̃(x) = -E(params, x) / T``.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar`` on one configuration.
      temperature: ``T > 0``.

    Returns:
      ``logdensity_fn(params, x) -> scalar``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> lp = umrf.logdensity(lambda p, x: 0.5 * jnp.sum(x**2), temperature=2.0)
      >>> float(lp(None, jnp.ones(2)))
      -0.5
    """
    check_positive("temperature", temperature)

    def logdensity_fn(params: Any, x: Any) -> jax.Array:
        return -energy_fn(params, x) / temperature

    return logdensity_fn


def score(energy_fn: EnergyFn, temperature: float = 1.0) -> EnergyFn:
    """Score ``s(x) = ∇ₓ log p(x) = -∇ₓ E(params, x) / T``.

    The score does not depend on the normaliser Z, which is why it drives
    Langevin dynamics and score matching (Hyvärinen 2005).

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar`` on one configuration.
      temperature: ``T > 0``.

    Returns:
      ``score_fn(params, x)`` with the same pytree structure as ``x``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> s = umrf.score(lambda p, x: 0.5 * jnp.sum(x**2))
      >>> s(None, jnp.array([1.0, -2.0])).tolist()
      [-1.0, 2.0]
    """
    check_positive("temperature", temperature)
    grad_e = jax.grad(energy_fn, argnums=1)

    def score_fn(params: Any, x: Any) -> Any:
        return jax.tree_util.tree_map(lambda g: -g / temperature, grad_e(params, x))

    return score_fn
