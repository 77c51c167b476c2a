"""Unadjusted Langevin algorithm (ULA).

One step of ULA is the Euler–Maruyama discretisation of the overdamped
Langevin diffusion ``dX = -∇E(X)/T dt + sqrt(2) dW`` whose stationary law is
``p(x) ∝ exp(-E(x)/T)``:

    x' = x - τ ∇E(x) / T + sqrt(2τ) ε,      ε ~ N(0, I).

Without a Metropolis–Hastings correction the chain is biased: on
``N(0, s²)`` (``E = x²/(2s²)``, ``T = 1``) its stationary variance is
``s² / (1 - τ / (2 s²))`` instead of ``s²``. Use :func:`umrf.samplers.mala`
for an exact sampler.

The state caches the energy and its gradient at the current position, so a
step costs one ``jax.value_and_grad`` of the energy. A
:class:`~umrf.samplers.Clamped` position samples the free coordinates given
the observed ones (see ``umrf.samplers._langevin``).

**Decoupled step and noise (SGLD as used by JEM).** The update
``x' = x + α ∇f(x) + σ ε`` with ``f = -E`` (JEM: ``α = 1``, ``σ = 0.01``) is
exactly ULA with ``τ = σ²/2`` and ``T = τ/α = σ²/(2α)``:
``ula(energy_fn, step_size=σ**2 / 2, temperature=σ**2 / (2 * α))``.

References:
  Roberts & Tweedie (1996), "Exponential convergence of Langevin
  distributions and their discrete approximations", Bernoulli 2(4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from umrf._validation import check_callable, static_positive_scalar
from umrf.samplers import _langevin
from umrf.samplers._base import SamplingAlgorithm, bind

__all__ = ["ULAInfo", "ULAState", "build_kernel", "init", "ula"]

EnergyFn = Callable[[Any, Any], jax.Array]


class ULAState(NamedTuple):
    """State of one ULA chain.

    Attributes:
      position: current configuration ``x`` (array or pytree of arrays).
      energy: ``E(params, x)`` at ``position`` (scalar).
      energy_grad: ``∇ₓ E(params, x)``, same structure as ``position``.
    """

    position: Any
    energy: jax.Array
    energy_grad: Any


class ULAInfo(NamedTuple):
    """Diagnostics of one ULA transition.

    Attributes:
      acceptance_rate: always 1 (ULA has no accept/reject step); present so
        that every umrf sampler's Info has the same fields.
      diverged: True when the new energy or any entry of the new position is
        NaN or infinite. The non-finite state is kept as is (never replaced).
    """

    acceptance_rate: jax.Array
    diverged: jax.Array


# --------------------------------------------------------------------------- ULA


def init(position: Any, params: Any, energy_fn: EnergyFn) -> ULAState:
    """Create the state of one chain at ``position``.

    Args:
      position: one configuration ``x`` (floating array or pytree), or a
        :class:`~umrf.samplers.Clamped` ``(value, observed)`` pair.
      params: parameters passed to ``energy_fn``.
      energy_fn: ``energy_fn(params, x) -> scalar``.

    Returns:
      A :class:`ULAState` with the energy and its gradient cached.
    """
    _langevin.check_float_position(position)
    value, free = _langevin.split(position)
    _langevin.check_scalar_energy(energy_fn, params, value)
    energy, grad = _langevin.energy_and_grad(energy_fn, params, value, free)
    return ULAState(position, energy, grad)


def _ula_step(
    key: jax.Array,
    state: ULAState,
    params: Any,
    *,
    energy_fn: EnergyFn,
    step_size: Any,
    temperature: float,
) -> tuple[ULAState, ULAInfo]:
    value, free = _langevin.split(state.position)
    drift = step_size / temperature
    scale = jnp.sqrt(2.0 * step_size)
    noise = _langevin.normal_like(key, value)
    new_value = _langevin.move(value, state.energy_grad, noise, -drift, scale, free)
    energy, grad = _langevin.energy_and_grad(energy_fn, params, new_value, free)
    diverged = ~(jnp.isfinite(energy) & _langevin.all_finite(new_value))
    info = ULAInfo(acceptance_rate=jnp.ones((), energy.dtype), diverged=diverged)
    return ULAState(_langevin.rejoin(state.position, new_value), energy, grad), info


def build_kernel(
    energy_fn: EnergyFn, *, temperature: float = 1.0
) -> Callable[[jax.Array, ULAState, Any, Any], tuple[ULAState, ULAInfo]]:
    """Return the ULA transition ``kernel(key, state, params, step_size)``.

    The step size is an argument of the kernel (it may be traced), which is
    what step-size adaptation needs; :func:`ula` binds it.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar``.
      temperature: ``T > 0``.

    Returns:
      ``kernel(key, state, params, step_size) -> (ULAState, ULAInfo)``.
    """
    check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    temperature = static_positive_scalar("temperature", temperature)

    def kernel(
        key: jax.Array, state: ULAState, params: Any, step_size: Any
    ) -> tuple[ULAState, ULAInfo]:
        return _ula_step(
            key, state, params, energy_fn=energy_fn, step_size=step_size, temperature=temperature
        )

    return kernel


def ula(energy_fn: EnergyFn, *, step_size: float, temperature: float = 1.0) -> SamplingAlgorithm:
    """Unadjusted Langevin algorithm: ``x' = x - τ∇E(x)/T + sqrt(2τ) ε``.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar`` on one configuration.
      step_size: keyword-only ``τ > 0``.
      temperature: keyword-only ``T > 0``; the chain targets ``exp(-E/T)`` (up
        to the O(τ) discretisation bias).

    Returns:
      ``SamplingAlgorithm(init, step)`` with ``init(x, params) -> ULAState``
      and ``step(key, state, params) -> (ULAState, ULAInfo)``. Algorithms
      built with the same ``energy_fn`` object and hyperparameters compare
      equal, so :func:`umrf.sample_chains` reuses their compiled program.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> alg = umrf.samplers.ula(lambda p, x: 0.5 * jnp.sum(x**2), step_size=0.1)
      >>> state = alg.init(jnp.zeros(3), None)
      >>> state, info = alg.step(jax.random.key(0), state, None)
      >>> state.position.shape, bool(info.diverged)
      ((3,), False)

    References:
      Roberts & Tweedie (1996), Bernoulli 2(4):341–363.
    """
    check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    step_size = static_positive_scalar("step_size", step_size)
    temperature = static_positive_scalar("temperature", temperature)
    return SamplingAlgorithm(
        init=bind(init, energy_fn=energy_fn),
        step=bind(_ula_step, energy_fn=energy_fn, step_size=step_size, temperature=temperature),
    )
