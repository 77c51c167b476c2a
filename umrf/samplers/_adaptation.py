"""Step-size adaptation for MALA toward a target acceptance rate, using all chains at once.

Warm-up runs ``num_steps`` MALA transitions on every chain with a step size
``ε_t`` shared by all chains, and tunes ``log ε`` by dual averaging
(Nesterov 2009; Hoffman & Gelman 2014, Algorithm 5) on the acceptance
probability averaged over the chains, ``ā_t = mean_c α_{c,t}``:

    H_t      = (1 - 1/(t + t₀)) H_{t-1} + (δ - ā_t) / (t + t₀)
    log ε_t  = μ - sqrt(t)/γ · H_t,                 μ = log(10 ε₀)
    log ε̄_t  = t^{-κ} log ε_t + (1 - t^{-κ}) log ε̄_{t-1}

with ``γ = 0.05, t₀ = 10, κ = 0.75``. The returned step size is the averaged
iterate ``ε̄`` after the last step; it is then *frozen*: build
``umrf.samplers.mala(energy_fn, result.step_size)`` and sample (the warm-up
draws are not from the target and should be discarded). Averaging over many
chains makes ``ā_t`` nearly noise-free, so a few hundred steps suffice.

The default target 0.574 is the optimal MALA acceptance rate in high
dimension (Roberts & Rosenthal 1998).

Random keys follow :func:`umrf.sample_chains` (chain ``c`` at step ``t``
uses ``fold_in(split(key, C)[c], t)``), and the whole warm-up is one jitted
``lax.scan`` (cached on ``energy_fn``, ``num_steps``, ``temperature`` and ``mesh``;
the step size, target, key, positions and params are traced).

References:
  Hoffman & Gelman (2014), "The No-U-Turn Sampler", JMLR 15, §3.2, Algorithm 5.
  Nesterov (2009), "Primal-dual subgradient methods for convex problems",
  Mathematical Programming 120(1).
  Roberts & Rosenthal (1998), "Optimal scaling of discrete approximations to
  Langevin diffusions", JRSS-B 60(1).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from umrf._validation import check_finite, check_positive_int, check_probability, is_concrete
from umrf.samplers._driver import _check_key, _check_mesh, _constrain, _num_chains
from umrf.samplers._mala import MALAState, _mala_step
from umrf.samplers._mala import init as mala_init
from umrf.samplers._ula import _check_energy_fn, _static_scalar

__all__ = ["MALAWarmupResult", "mala_warmup"]


class MALAWarmupResult(NamedTuple):
    """Outcome of :func:`mala_warmup`.

    Attributes:
      step_size: the tuned, frozen step size ``ε̄`` (scalar array).
      state: the chains' MALA states after warm-up (leading axis = chains);
        start sampling from ``state.position``.
      acceptance_rate: mean acceptance probability over chains at each
        warm-up step, shape ``(num_steps,)``.
      step_sizes: the step size ``ε_t`` used at each warm-up step.
    """

    step_size: jax.Array
    state: MALAState
    acceptance_rate: jax.Array
    step_sizes: jax.Array


def _warmup_program(
    energy_fn: Any,
    num_steps: int,
    temperature: float,
    mesh: Mesh | None,
    key: jax.Array,
    x0: Any,
    params: Any,
    initial_step_size: jax.Array,
    target: jax.Array,
) -> MALAWarmupResult:
    gamma, t0, kappa = 0.05, 10.0, 0.75
    num_chains = jax.tree_util.tree_leaves(x0)[0].shape[0]
    chain_keys = _constrain(jax.random.split(key, num_chains), mesh)
    state = jax.vmap(mala_init, in_axes=(0, None, None))(_constrain(x0, mesh), params, energy_fn)
    state = _constrain(state, mesh)
    step = functools.partial(_mala_step, energy_fn=energy_fn, temperature=temperature)
    vstep = jax.vmap(lambda k, s, p, e: step(k, s, p, step_size=e), in_axes=(0, 0, None, None))
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    dtype = jnp.result_type(float)
    mu = jnp.log(10.0 * initial_step_size).astype(dtype)

    def body(carry: Any, t: jax.Array) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        state, log_eps, log_eps_bar, h = carry
        eps = jnp.exp(log_eps)
        state, info = vstep(fold(chain_keys, t), state, params, eps)
        state = _constrain(state, mesh)
        rate = jnp.mean(info.acceptance_rate)
        i = (t + 1).astype(dtype)
        h = (1.0 - 1.0 / (i + t0)) * h + (target - rate) / (i + t0)
        log_eps = mu - jnp.sqrt(i) / gamma * h
        weight = i**-kappa
        log_eps_bar = weight * log_eps + (1.0 - weight) * log_eps_bar
        return (state, log_eps, log_eps_bar, h), (rate, eps)

    zero = jnp.zeros((), dtype)
    init = (state, jnp.log(initial_step_size).astype(dtype), zero, zero)
    (state, _, log_eps_bar, _), (rates, eps) = jax.lax.scan(
        body, init, jnp.arange(num_steps, dtype=jnp.int32)
    )
    return MALAWarmupResult(jnp.exp(log_eps_bar), state, rates, eps)


_warmup_jit = jax.jit(_warmup_program, static_argnums=(0, 1, 2, 3))


def mala_warmup(
    energy_fn: Any,
    key: jax.Array,
    x0: Any,
    params: Any,
    num_steps: int,
    *,
    initial_step_size: float = 0.1,
    target_acceptance: float = 0.574,
    temperature: float = 1.0,
    mesh: Mesh | None = None,
) -> MALAWarmupResult:
    """Tune one MALA step size for all chains by dual averaging, then freeze it.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar``.
      key: PRNG key.
      x0: initial positions, leading chain axis ``(num_chains, ...)``.
      params: energy parameters (traced; new values do not recompile).
      num_steps: warm-up length (``≥ 1``; a few hundred is typical).
      initial_step_size: ``ε₀ > 0``; sets ``μ = log(10 ε₀)``.
      target_acceptance: ``δ ∈ (0, 1)``, default 0.574.
      temperature: ``T > 0``.
      mesh: optional ``"chains"`` mesh, as in :func:`umrf.sample_chains`.

    Returns:
      :class:`MALAWarmupResult` ``(step_size, state, acceptance_rate, step_sizes)``.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> energy = lambda p, x: 0.5 * jnp.sum(x**2)
      >>> x0 = jnp.zeros((256, 5))
      >>> res = umrf.samplers.mala_warmup(energy, jax.random.key(0), x0, None, 200)
      >>> alg = umrf.samplers.mala(energy, res.step_size)  # frozen from here on
      >>> final, trace = umrf.sample_chains(alg, jax.random.key(1), res.state.position, None, 100)
    """
    _check_energy_fn(energy_fn)
    _check_key(key)
    num_steps = check_positive_int("num_steps", num_steps)
    initial_step_size = _static_scalar("initial_step_size", initial_step_size)
    temperature = _static_scalar("temperature", temperature)
    check_probability("target_acceptance", target_acceptance)
    if is_concrete(target_acceptance) and float(target_acceptance) == 0.0:
        raise ValueError("`target_acceptance` must be > 0; e.g. 0.574 for MALA.")
    num_chains = _num_chains(x0)
    check_finite("x0", x0)
    _check_mesh(mesh, num_chains)
    if mesh is not None and is_concrete(x0):
        x0 = jax.device_put(x0, NamedSharding(mesh, P("chains")))
    return _warmup_jit(
        energy_fn,
        num_steps,
        temperature,
        mesh,
        key,
        x0,
        params,
        jnp.asarray(initial_step_size, jnp.result_type(float)),
        jnp.asarray(target_acceptance, jnp.result_type(float)),
    )
