r"""The discrete Langevin proposal: DULA (unadjusted) and DMALA (Metropolis-adjusted).

Zhang, Liu & Liu (2022) carry the Langevin step ``x' = x + ½α∇f(x) + √α ξ``
over to discrete spaces: for ``f = log p̃ = -E/T`` the proposal is

    q(x' | x) ∝ exp( ½ ∇f(x)ᵀ(x' - x) - ‖x' - x‖² / (2α) ),

which factorises over coordinates, so EVERY coordinate is redrawn at once
and independently:

    binary      q(x'_i ≠ x_i | x) = σ(½ d̃_i - 1/(2α)),
    categorical q(x'_i = k | x)   ∝ exp(½ d̃_{ik} - [k ≠ x_i] / α),

with ``d̃`` the first-order gains of ``umrf.samplers._discrete_gradient``
(one-hot moves have ``‖x' - x‖² = 2``). The step size ``α`` trades the number
of coordinates that change per step against the accuracy of the first-order
estimate; ``α → 0`` freezes the chain.

* **DULA** uses the proposal as the next state (no correction): fast, but its
  stationary distribution is only approximately ``p`` (the bias shrinks with
  ``α``). A proposal of energy ``+inf`` (a hard zero) is refused.
* **DMALA** accepts the proposal with probability
  ``min(1, exp(f(x') - f(x)) q(x | x') / q(x' | x))``, where the reverse
  proposal uses ``∇f(x')``: exactly ``p``-invariant.

One step costs one gradient of the energy (the state caches ``E`` and
``∇E``). Random numbers: binary chains draw ``n + 1`` uniforms in one call
(``n`` flips and the acceptance), categorical chains one Gumbel-max draw per
variable and one uniform.

References:
  R. Zhang, X. Liu, Q. Liu, "A Langevin-like sampler for discrete
  distributions", ICML 2022.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from umrf._validation import check_callable, static_positive_scalar
from umrf.samplers import _discrete_gradient as dg
from umrf.samplers._base import SamplingAlgorithm, bind
from umrf.samplers._discrete_gradient import DiscreteGradientInfo, DiscreteGradientState

__all__ = ["dmala", "dula"]

EnergyFn = Callable[[Any, Any], jax.Array]


def _logits(
    grad: jax.Array, x: jax.Array, enc: dg.Encoding, step_size: Any, temperature: Any
) -> jax.Array:
    """Binary: per-unit flip logits ``(S)``; categorical: per-variable logits ``(S, K)``."""
    d = dg.first_order_gain(grad, x, enc, temperature)
    if enc.binary:
        return 0.5 * d - 0.5 / step_size
    moved = 1.0 - jax.nn.one_hot(x, enc.max_categories, dtype=d.dtype)
    return dg.mask_invalid(0.5 * d - moved / step_size, enc, x.shape)


def _log_q(logits: jax.Array, x_from: jax.Array, x_to: jax.Array, enc: dg.Encoding) -> jax.Array:
    """``log q(x_to | x_from)`` given the proposal logits computed at ``x_from``."""
    if enc.binary:
        flip = x_to != x_from
        return jnp.sum(jnp.where(flip, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)))
    log_p = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_p, x_to[..., None].astype(jnp.int32), axis=-1)
    return jnp.sum(picked)


def _dlp_init(
    position: Any, params: Any, *, energy_fn: EnergyFn, encoding: dg.Encoding
) -> DiscreteGradientState:
    return dg.init_state(position, params, energy_fn, encoding)


def _dlp_step(
    key: jax.Array,
    state: DiscreteGradientState,
    params: Any,
    *,
    energy_fn: EnergyFn,
    encoding: dg.Encoding,
    step_size: float,
    temperature: float,
    adjusted: bool,
) -> tuple[DiscreteGradientState, DiscreteGradientInfo]:
    enc = encoding
    x = state.position
    dtype = state.energy_grad.dtype
    logits = _logits(state.energy_grad, x, enc, step_size, temperature)
    if enc.binary:
        u = jax.random.uniform(key, (x.size + 1,), dtype)
        flip = u[:-1].reshape(x.shape) < jax.nn.sigmoid(logits)
        y = jnp.where(flip, 1 - x, x).astype(x.dtype)
        u_accept = u[-1]
    else:
        k_prop, k_accept = jax.random.split(key)
        y = jax.random.categorical(k_prop, logits, axis=-1).astype(x.dtype)
        u_accept = jax.random.uniform(k_accept, (), dtype)
    energy, grad = dg.energy_and_grad(energy_fn, params, y, enc, dtype)
    bad = (
        ~jnp.isfinite(state.energy)
        | ~dg.finite_tree(energy, grad)
        | (energy == -jnp.inf)
        | ~dg.in_range(x, enc)
    )
    if adjusted:
        log_q_forward = _log_q(logits, x, y, enc)
        log_q_backward = _log_q(_logits(grad, y, enc, step_size, temperature), y, x, enc)
        log_ratio = -(energy - state.energy) / temperature + log_q_backward - log_q_forward
        diverged = bad | jnp.isnan(log_ratio)
        is_accepted = (jnp.log(u_accept) < log_ratio) & ~diverged
        acceptance_rate = jnp.where(diverged, 0.0, jnp.exp(jnp.minimum(log_ratio, 0.0)))
    else:
        diverged = bad
        is_accepted = (energy < jnp.inf) & ~diverged
        acceptance_rate = is_accepted.astype(dtype)
    new_state = DiscreteGradientState(
        jnp.where(is_accepted, y, x),
        jnp.where(is_accepted, energy, state.energy),
        jnp.where(is_accepted, grad, state.energy_grad),
    )
    return new_state, DiscreteGradientInfo(acceptance_rate.astype(dtype), is_accepted, diverged)


def _build(energy_fn, num_categories, step_size, temperature, adjusted) -> SamplingAlgorithm:
    check_callable("energy_fn", energy_fn, "energy_fn(params, x_encoded) -> scalar")
    encoding = dg.make_encoding(num_categories)
    step_size = static_positive_scalar("step_size", step_size)
    temperature = static_positive_scalar("temperature", temperature)
    return SamplingAlgorithm(
        init=bind(_dlp_init, energy_fn=energy_fn, encoding=encoding),
        step=bind(
            _dlp_step,
            energy_fn=energy_fn,
            encoding=encoding,
            step_size=step_size,
            temperature=temperature,
            adjusted=adjusted,
        ),
    )


def dula(
    energy_fn: EnergyFn,
    *,
    step_size: float,
    num_categories: Any = None,
    temperature: float = 1.0,
) -> SamplingAlgorithm:
    """Discrete unadjusted Langevin (DULA): every coordinate redrawn at once, no correction.

    Approximately samples ``p(x) ∝ exp(-E(params, x)/T)`` with a bias that
    vanishes as ``step_size → 0``; use :func:`dmala` for an exact chain.

    Args:
      energy_fn: ``energy_fn(params, x_encoded) -> scalar``, differentiable in
        the encoded states (binary floats or one-hot; see
        :func:`umrf.models.relaxation` and :func:`umrf.samplers.gwg`).
      step_size: keyword-only ``α > 0``. Larger moves more coordinates per
        step; a DMALA acceptance rate around 0.5–0.6 is a good target.
      num_categories: keyword-only encoding (``None`` binary, ``K``, or a
        tuple of per-variable cardinalities), as for :func:`umrf.samplers.gwg`.
      temperature: keyword-only ``T > 0``.

    Returns:
      ``SamplingAlgorithm(init, step)`` with
      :class:`~umrf.samplers.DiscreteGradientState` and
      :class:`~umrf.samplers.DiscreteGradientInfo`; equal inputs give equal
      algorithms.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> energy = lambda w, x: -jnp.dot(w, x)          # independent bits, p(1) = σ(w)
      >>> alg = umrf.samplers.dula(energy, step_size=1.0)
      >>> final, _ = umrf.sample_chains(
      ...     alg, jax.random.key(0), jnp.zeros(3), jnp.zeros((4, 3), jnp.int32), num_steps=5)
      >>> final.position.shape
      (4, 3)

    References:
      Zhang, Liu & Liu, ICML 2022.
    """
    return _build(energy_fn, num_categories, step_size, temperature, False)


def dmala(
    energy_fn: EnergyFn,
    *,
    step_size: float,
    num_categories: Any = None,
    temperature: float = 1.0,
) -> SamplingAlgorithm:
    """Discrete Metropolis-adjusted Langevin (DMALA): the DULA proposal plus MH.

    Exactly ``p``-invariant for ``p(x) ∝ exp(-E(params, x)/T)``.

    Args:
      energy_fn: ``energy_fn(params, x_encoded) -> scalar``, differentiable in
        the encoded states (binary floats or one-hot; see
        :func:`umrf.models.relaxation` and :func:`umrf.samplers.gwg`).
      step_size: keyword-only ``α > 0``. Larger moves more coordinates per
        step; a DMALA acceptance rate around 0.5–0.6 is a good target.
      num_categories: keyword-only encoding (``None`` binary, ``K``, or a
        tuple of per-variable cardinalities), as for :func:`umrf.samplers.gwg`.
      temperature: keyword-only ``T > 0``.

    Returns:
      ``SamplingAlgorithm(init, step)`` with
      :class:`~umrf.samplers.DiscreteGradientState` and
      :class:`~umrf.samplers.DiscreteGradientInfo`; equal inputs give equal
      algorithms.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> m = umrf.models.potts((3, 3), 3, coupling=0.5, periodic=False)
      >>> r = umrf.models.relaxation(m)                 # one-hot, K = 3
      >>> alg = umrf.samplers.dmala(r.energy_fn, step_size=0.5, num_categories=r.num_categories)
      >>> final, trace = umrf.sample_chains(
      ...     alg, jax.random.key(0), m, jnp.zeros((4, 3, 3), jnp.int8), num_steps=20)
      >>> final.position.shape, bool(trace.info.diverged.any())
      ((4, 3, 3), False)

    References:
      Zhang, Liu & Liu, ICML 2022.
    """
    return _build(energy_fn, num_categories, step_size, temperature, True)
