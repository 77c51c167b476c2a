"""Negative samples for contrastive divergence from any sampling algorithm.

Three ways to produce the model samples ``x̃ ∼ p_θ`` that
``umrf.losses.contrastive_divergence`` needs, each a pure, jit-able function
of a ``SamplingAlgorithm`` (DESIGN.md §3):

* CD-k (Hinton 2002): ``k`` MCMC steps started at the data batch.
* Persistent CD (Tieleman 2008): ``k`` steps continuing the chains left by
  the previous parameter update (their positions are the carried state).
* Replay buffer (Du & Mordatch 2019; Grathwohl et al. 2020): ``k`` steps
  from a random batch of a :class:`~umrf.samplers.ReplayBuffer`, written back.

Chains are re-initialised with ``alg.init(position, params)`` at every call,
because cached energies and gradients from the previous parameters are stale.
Parameters enter through ``stop_gradient``: negatives are constants for the
loss. The chains run on the driver's loop (``umrf.samplers._driver``) with its
key schedule, so ``run_chains(alg, key, params, x0, num_steps=n)`` ends where
``umrf.sample_chains(alg, key, params, x0, num_steps=n)`` does.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from umrf._chain_loop import chain_keys, scan_steps
from umrf._validation import check_key, check_positive_int
from umrf.samplers._base import SamplingAlgorithm
from umrf.samplers._driver import init_chains, num_chains_of
from umrf.samplers._replay_buffer import ReplayBuffer, ReplayBufferState


class NegativesInfo(NamedTuple):
    """Summary of the MCMC run that produced a batch of negatives.

    Attributes:
      acceptance_rate: mean acceptance rate over chains and steps.
      num_diverged: number of chains that hit a non-finite energy or
        position at some step (their positions are returned as they are).
    """

    acceptance_rate: jax.Array
    num_diverged: jax.Array


def _check_alg(alg: Any) -> None:
    if not isinstance(alg, SamplingAlgorithm):
        raise TypeError(
            "`alg` must be a umrf.samplers.SamplingAlgorithm (e.g. umrf.samplers.ula(...)); "
            f"got {type(alg).__name__}."
        )


def _final_program(
    alg: SamplingAlgorithm, num_steps: int, key: jax.Array, params: Any, x0: Any
) -> tuple[Any, NegativesInfo]:
    n = num_chains_of(x0)
    params = jax.lax.stop_gradient(params)
    states = init_chains(alg, params, x0)
    if num_steps == 0:
        return jax.lax.stop_gradient(states.position), NegativesInfo(
            jnp.ones((), jnp.float32), jnp.zeros((), jnp.int32)
        )
    vstep = jax.vmap(alg.step, in_axes=(0, 0, None))

    def transition(keys: jax.Array, carry: Any, t: jax.Array) -> tuple[Any, None]:
        states, acc, diverged = carry
        states, info = vstep(keys, states, params)
        acc = acc + jnp.mean(info.acceptance_rate.astype(jnp.float32))
        return (states, acc, diverged | info.diverged), None

    carry = (states, jnp.zeros((), jnp.float32), jnp.zeros((n,), bool))
    (states, acc, diverged), _ = scan_steps(
        transition, carry, chain_keys(key, n), jnp.int32(0), num_records=num_steps
    )
    info = NegativesInfo(
        acceptance_rate=acc / num_steps, num_diverged=jnp.sum(diverged).astype(jnp.int32)
    )
    return jax.lax.stop_gradient(states.position), info


@functools.lru_cache(maxsize=64)
def _final_jit(alg: SamplingAlgorithm, num_steps: int) -> Any:
    return jax.jit(functools.partial(_final_program, alg, num_steps))


def run_chains(
    alg: SamplingAlgorithm, key: jax.Array, params: Any, x0: Any, *, num_steps: int
) -> tuple[Any, NegativesInfo]:
    """Run ``num_steps`` transitions of ``len(x0)`` independent chains; keep only the end.

    Unlike ``umrf.sample_chains`` nothing but the final positions is stored,
    which is what a training step needs. Same loop and keys as
    ``umrf.sample_chains``, so both end at the same positions for the same
    key. Called eagerly the program is jitted and cached on ``(alg,
    num_steps)``; inside a user's ``jit`` it is inlined.

    Args:
      alg: any ``SamplingAlgorithm``.
      key: PRNG key.
      params: model parameters (treated as constants).
      x0: start positions with a leading chain axis.
      num_steps: keyword-only number of transitions (static, ``>= 0``).

    Returns:
      ``(positions, NegativesInfo)``.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> alg = umrf.samplers.ula(lambda p, x: 0.5 * jnp.sum(x**2), step_size=0.1)
      >>> x, info = umrf.samplers.run_chains(
      ...     alg, jax.random.key(0), None, jnp.zeros((16, 2)), num_steps=10)
      >>> x.shape, int(info.num_diverged)
      ((16, 2), 0)
    """
    _check_alg(alg)
    check_key(key)
    num_steps = check_positive_int("num_steps", num_steps, allow_zero=True)
    num_chains_of(x0)
    try:
        program = _final_jit(alg, num_steps)
    except TypeError:  # traced hyperparameters: already inside jit
        program = functools.partial(_final_program, alg, num_steps)
    return program(key, params, x0)


def cd_negatives(
    alg: SamplingAlgorithm, key: jax.Array, params: Any, x_data: Any, *, num_steps: int
) -> tuple[Any, NegativesInfo]:
    """CD-k negatives: ``num_steps`` MCMC steps started at the data batch (Hinton 2002).

    Args:
      alg: any ``SamplingAlgorithm`` targeting ``p_θ``.
      key: PRNG key.
      params: current parameters.
      x_data: data batch (leading batch axis); one chain per example.
      num_steps: keyword-only ``k >= 1``.

    Returns:
      ``(x_model, NegativesInfo)``.
    """
    check_positive_int("num_steps", num_steps)
    return run_chains(alg, key, params, x_data, num_steps=num_steps)


def pcd_negatives(
    alg: SamplingAlgorithm, key: jax.Array, params: Any, chains: Any, *, num_steps: int
) -> tuple[Any, NegativesInfo]:
    """Persistent-CD negatives: continue the persistent chains by ``num_steps`` steps.

    Feed the returned positions back as ``chains`` at the next parameter
    update (Tieleman 2008): the chains then track the slowly changing model.

    Args:
      alg: any ``SamplingAlgorithm`` targeting ``p_θ``.
      key: PRNG key.
      params: current parameters.
      chains: current chain positions (leading chain axis).
      num_steps: keyword-only ``k >= 1``.

    Returns:
      ``(new_chains, NegativesInfo)``; ``new_chains`` are the negatives.
    """
    check_positive_int("num_steps", num_steps)
    return run_chains(alg, key, params, chains, num_steps=num_steps)


def replay_negatives(
    alg: SamplingAlgorithm,
    buffer: ReplayBuffer,
    key: jax.Array,
    params: Any,
    buffer_state: ReplayBufferState,
    *,
    batch_size: int,
    num_steps: int,
) -> tuple[Any, ReplayBufferState, NegativesInfo]:
    """Replay-buffer negatives (JEM, Grathwohl et al. 2020, Alg. 1).

    Reads ``batch_size`` random buffer entries (each reinitialised with
    probability ``buffer.reinit_prob``), runs ``num_steps`` MCMC steps and
    writes the results back to the same slots.

    Args:
      alg: any ``SamplingAlgorithm`` targeting ``p_θ``.
      buffer: the :class:`ReplayBuffer` configuration.
      key: PRNG key.
      params: current parameters.
      buffer_state: current :class:`ReplayBufferState`.
      batch_size: keyword-only number of negatives.
      num_steps: keyword-only number of MCMC steps ``>= 1``.

    Returns:
      ``(x_model, new_buffer_state, NegativesInfo)``.
    """
    if not isinstance(buffer, ReplayBuffer):
        raise TypeError(
            f"`buffer` must be a umrf.samplers.ReplayBuffer; got {type(buffer).__name__}."
        )
    check_positive_int("num_steps", num_steps)
    k_read, k_run = jax.random.split(key)
    x0, indices = buffer.sample(k_read, buffer_state, batch_size=batch_size)
    x, info = run_chains(alg, k_run, params, x0, num_steps=num_steps)
    return x, buffer.update(buffer_state, indices, x), info
