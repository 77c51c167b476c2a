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
``umrf.samplers.mala(energy_fn, step_size=result.step_size)`` and sample (the warm-up
draws are not from the target and should be discarded). Averaging over many
chains makes ``ā_t`` nearly noise-free, so a few hundred steps suffice.

The default target 0.574 is the optimal MALA acceptance rate in high
dimension (Roberts & Rosenthal 1998).

The warm-up runs on the driver's own loop (``umrf._chain_loop.scan_steps``),
so its random keys are those of :func:`umrf.sample_chains` (chain ``c`` at step
``t`` uses ``fold_in(split(key, C)[c], t)``), and the whole warm-up is one
jitted program (cached on ``energy_fn``, ``num_steps``, ``temperature`` and
``mesh``; the step size, target, key, positions and params are traced).

References:
  Hoffman & Gelman (2014), "The No-U-Turn Sampler", JMLR 15, §3.2, Algorithm 5.
  Nesterov (2009), "Primal-dual subgradient methods for convex problems",
  Mathematical Programming 120(1).
  Roberts & Rosenthal (1998), "Optimal scaling of discrete approximations to
  Langevin diffusions", JRSS-B 60(1).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from umrf._chain_loop import chain_keys, constrain, scan_steps
from umrf._validation import (
    check_callable,
    check_finite,
    check_key,
    check_positive_int,
    check_probability,
    is_concrete,
    static_positive_scalar,
)
from umrf.samplers._base import SamplingAlgorithm, bind
from umrf.samplers._driver import check_mesh, init_chains, num_chains_of
from umrf.samplers._mala import MALAState, build_kernel
from umrf.samplers._mala import init as mala_init

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
    params: Any,
    x0: Any,
    initial_step_size: jax.Array,
    target: jax.Array,
) -> MALAWarmupResult:
    gamma, t0, kappa = 0.05, 10.0, 0.75
    num_chains = jax.tree_util.tree_leaves(x0)[0].shape[0]
    # The chains' init is MALA's; the step size is a traced carry, not a bound value.
    alg = SamplingAlgorithm(bind(mala_init, energy_fn=energy_fn), None)
    state = init_chains(alg, params, x0, mesh)
    keys = chain_keys(key, num_chains, mesh)
    kernel = build_kernel(energy_fn, temperature=temperature)  # step size is traced
    vstep = jax.vmap(lambda k, s, e: kernel(k, s, params, e), in_axes=(0, 0, None))
    dtype = jnp.result_type(float)
    mu = jnp.log(10.0 * initial_step_size).astype(dtype)

    def transition(step_keys: jax.Array, carry: Any, t: jax.Array) -> tuple[Any, Any]:
        state, log_eps, log_eps_bar, h = carry
        eps = jnp.exp(log_eps)
        state, info = vstep(step_keys, state, eps)
        state = constrain(state, mesh)
        rate = jnp.mean(info.acceptance_rate)
        i = (t + 1).astype(dtype)
        h = (1.0 - 1.0 / (i + t0)) * h + (target - rate) / (i + t0)
        log_eps = mu - jnp.sqrt(i) / gamma * h
        weight = i**-kappa
        log_eps_bar = weight * log_eps + (1.0 - weight) * log_eps_bar
        return (state, log_eps, log_eps_bar, h), (rate, eps)

    zero = jnp.zeros((), dtype)
    carry = (state, jnp.log(initial_step_size).astype(dtype), zero, zero)
    (state, _, log_eps_bar, _), (rates, eps) = scan_steps(
        transition, carry, keys, jnp.int32(0), num_records=num_steps
    )
    return MALAWarmupResult(jnp.exp(log_eps_bar), state, rates, eps)


_warmup_jit = jax.jit(_warmup_program, static_argnums=(0, 1, 2, 3))


def mala_warmup(
    energy_fn: Any,
    key: jax.Array,
    params: Any,
    x0: Any,
    *,
    num_steps: int,
    initial_step_size: float = 0.1,
    target_acceptance: float = 0.574,
    temperature: float = 1.0,
    mesh: Mesh | None = None,
) -> MALAWarmupResult:
    """Tune one MALA step size for all chains by dual averaging, then freeze it.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar``.
      key: PRNG key.
      params: energy parameters (traced; new values do not recompile).
      x0: initial positions, leading chain axis ``(num_chains, ...)``.
      num_steps: keyword-only warm-up length (``≥ 1``; a few hundred is typical).
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
      >>> res = umrf.samplers.mala_warmup(energy, jax.random.key(0), None, x0, num_steps=200)
      >>> alg = umrf.samplers.mala(energy, step_size=res.step_size)  # frozen from here on
      >>> final, trace = umrf.sample_chains(
      ...     alg, jax.random.key(1), None, res.state.position, num_steps=100)
    """
    check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    check_key(key)
    num_steps = check_positive_int("num_steps", num_steps)
    initial_step_size = static_positive_scalar("initial_step_size", initial_step_size)
    temperature = static_positive_scalar("temperature", temperature)
    check_probability("target_acceptance", target_acceptance)
    if is_concrete(target_acceptance) and float(target_acceptance) == 0.0:
        raise ValueError("`target_acceptance` must be > 0; e.g. 0.574 for MALA.")
    num_chains = num_chains_of(x0)
    check_finite("x0", x0)
    check_mesh(mesh, num_chains)
    if mesh is not None and is_concrete(x0):
        x0 = jax.device_put(x0, NamedSharding(mesh, P("chains")))
    return _warmup_jit(
        energy_fn,
        num_steps,
        temperature,
        mesh,
        key,
        params,
        x0,
        jnp.asarray(initial_step_size, jnp.result_type(float)),
        jnp.asarray(target_acceptance, jnp.result_type(float)),
    )
