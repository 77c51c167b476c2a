"""Metropolis-adjusted Langevin algorithm (MALA).

A ULA move is used as a proposal and corrected by Metropolis–Hastings, so
the chain leaves ``p(x) ∝ exp(-E(x)/T)`` exactly invariant:

    y = x - τ ∇E(x)/T + sqrt(2τ) ε,                      ε ~ N(0, I)
    log q(y | x) = -‖y - x + τ∇E(x)/T‖² / (4τ)          (= -‖ε‖²/2 + const)
    log α = -(E(y) - E(x))/T + log q(x | y) - log q(y | x)
    accept y with probability min(1, exp(log α)).

The proposal density is asymmetric and enters exactly (with
``x - y + τ∇E(y)/T = τ(∇E(x) + ∇E(y))/T - sqrt(2τ) ε``). The state caches
the energy and its gradient, so a step costs one ``jax.value_and_grad``.

Random numbers: the proposal noise ``ε`` and the acceptance uniform come from
one ``jax.random.uniform`` draw of ``n + 1`` numbers per step (``n`` entries
of ``x``), mapped to normals by ``sqrt(2)·erfinv`` exactly as
``jax.random.normal`` does; this saves a key split and a second random-bits
call per chain and step.

A :class:`~umrf.samplers.Clamped` position samples the free coordinates
given the observed ones; the proposal and its density then live on the free
subspace (``umrf.samplers._langevin``), so the correction stays exact.

A proposal whose energy or position is not finite is rejected (its
acceptance probability is reported as 0) and flagged ``Info.diverged``; the
chain stays where it was, which is the Metropolis–Hastings rule, not a
repair.

References:
  Roberts & Tweedie (1996), "Exponential convergence of Langevin
  distributions and their discrete approximations", Bernoulli 2(4).
  Besag (1994), comment on Grenander & Miller, JRSS-B 56(4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from umrf._validation import check_callable, static_positive_scalar
from umrf.samplers import _langevin
from umrf.samplers._base import SamplingAlgorithm, bind

__all__ = ["MALAInfo", "MALAState", "build_kernel", "init", "mala"]

EnergyFn = Callable[[Any, Any], jax.Array]


class MALAState(NamedTuple):
    """State of one MALA chain.

    Attributes:
      position: current configuration ``x``.
      energy: ``E(params, x)`` (scalar), cached.
      energy_grad: ``∇ₓ E(params, x)``, cached.
    """

    position: Any
    energy: jax.Array
    energy_grad: Any


class MALAInfo(NamedTuple):
    """Diagnostics of one MALA transition.

    Attributes:
      acceptance_rate: Metropolis–Hastings acceptance probability
        ``min(1, exp(log α))`` of this step's proposal (0 for a non-finite
        proposal).
      is_accepted: whether the proposal was accepted.
      diverged: True when the proposal's energy, position or log acceptance
        ratio was NaN or infinite (the proposal is then rejected).
    """

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    diverged: jax.Array


def init(position: Any, params: Any, energy_fn: EnergyFn) -> MALAState:
    """Create the state of one chain at ``position`` (energy and gradient cached).

    Args:
      position: one configuration ``x`` (floating array or pytree), or a
        :class:`~umrf.samplers.Clamped` ``(value, observed)`` pair.
      params: parameters passed to ``energy_fn``.
      energy_fn: ``energy_fn(params, x) -> scalar``.

    Returns:
      A :class:`MALAState`.
    """
    _langevin.check_float_position(position)
    value, free = _langevin.split(position)
    _langevin.check_scalar_energy(energy_fn, params, value)
    energy, grad = _langevin.energy_and_grad(energy_fn, params, value, free)
    return MALAState(position, energy, grad)


def _mala_step(
    key: jax.Array,
    state: MALAState,
    params: Any,
    *,
    energy_fn: EnergyFn,
    step_size: Any,
    temperature: float,
) -> tuple[MALAState, MALAInfo]:
    value, free = _langevin.split(state.position)
    drift = step_size / temperature
    scale = jnp.sqrt(2.0 * step_size)
    noise, uniform = _langevin.normal_like_and_uniform(key, value)
    noise = _langevin.mask_free(noise, free)
    proposal = _langevin.move(value, state.energy_grad, noise, -drift, scale, free)
    energy, grad = _langevin.energy_and_grad(energy_fn, params, proposal, free)
    log_q_backward, log_q_forward = _langevin.mala_log_proposals(
        state.energy_grad, grad, noise, step_size, drift, scale
    )
    log_ratio = -(energy - state.energy) / temperature + log_q_backward - log_q_forward

    diverged = ~(jnp.isfinite(energy) & jnp.isfinite(log_ratio) & _langevin.all_finite(proposal))
    log_u = jnp.log(uniform).astype(log_ratio.dtype)
    is_accepted = (log_u < log_ratio) & ~diverged
    acceptance_rate = jnp.where(diverged, 0.0, jnp.exp(jnp.minimum(log_ratio, 0.0)))

    def select(new: Any, old: Any) -> Any:
        return jax.tree_util.tree_map(lambda a, b: jnp.where(is_accepted, a, b), new, old)

    new_state = MALAState(
        _langevin.rejoin(state.position, select(proposal, value)),
        jnp.where(is_accepted, energy, state.energy),
        select(grad, state.energy_grad),
    )
    return new_state, MALAInfo(acceptance_rate, is_accepted, diverged)


def build_kernel(
    energy_fn: EnergyFn, *, temperature: float = 1.0
) -> Callable[[jax.Array, MALAState, Any, Any], tuple[MALAState, MALAInfo]]:
    """Return the MALA transition ``kernel(key, state, params, step_size)``.

    The step size is a (possibly traced) argument; step-size adaptation uses
    this kernel directly and :func:`mala` binds a fixed step size.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar``.
      temperature: ``T > 0``.

    Returns:
      ``kernel(key, state, params, step_size) -> (MALAState, MALAInfo)``.
    """
    check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    temperature = static_positive_scalar("temperature", temperature)

    def kernel(
        key: jax.Array, state: MALAState, params: Any, step_size: Any
    ) -> tuple[MALAState, MALAInfo]:
        return _mala_step(
            key, state, params, energy_fn=energy_fn, step_size=step_size, temperature=temperature
        )

    return kernel


def mala(energy_fn: EnergyFn, *, step_size: float, temperature: float = 1.0) -> SamplingAlgorithm:
    """Metropolis-adjusted Langevin algorithm targeting ``exp(-E(params, x)/T)``.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar`` on one configuration.
      step_size: keyword-only ``τ > 0`` of the Langevin proposal
        ``y = x - τ∇E(x)/T + sqrt(2τ) ε``. Tune it with
        :func:`umrf.samplers.mala_warmup` (an acceptance rate near 0.57 is
        optimal in high dimension, Roberts & Rosenthal 1998).
      temperature: keyword-only ``T > 0``.

    Returns:
      ``SamplingAlgorithm(init, step)`` with ``init(x, params) -> MALAState``
      and ``step(key, state, params) -> (MALAState, MALAInfo)``; equal inputs
      give equal algorithms. Positions may be :class:`~umrf.samplers.Clamped`.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> alg = umrf.samplers.mala(lambda p, x: 0.5 * jnp.sum(x**2), step_size=0.5)
      >>> state = alg.init(jnp.zeros(2), None)
      >>> state, info = alg.step(jax.random.key(0), state, None)
      >>> sorted(info._fields)
      ['acceptance_rate', 'diverged', 'is_accepted']

    References:
      Roberts & Tweedie (1996), Bernoulli 2(4):341–363.
      Roberts & Rosenthal (1998), JRSS-B 60(1):255–268.
    """
    check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    step_size = static_positive_scalar("step_size", step_size)
    temperature = static_positive_scalar("temperature", temperature)
    return SamplingAlgorithm(
        init=bind(init, energy_fn=energy_fn),
        step=bind(_mala_step, energy_fn=energy_fn, step_size=step_size, temperature=temperature),
    )
