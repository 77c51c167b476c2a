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
loss.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from umrf._validation import check_positive_int
from umrf.samplers._base import SamplingAlgorithm
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


def _leading(name: str, x: Any) -> int:
    leaves = jax.tree_util.tree_leaves(x)
    if not leaves or any(jnp.ndim(leaf) == 0 for leaf in leaves):
        raise ValueError(f"`{name}` must have a leading chain axis, shape (num_chains, ...).")
    return int(jnp.shape(leaves[0])[0])


def run_chains(
    alg: SamplingAlgorithm, key: jax.Array, x0: Any, params: Any, num_steps: int
) -> tuple[Any, NegativesInfo]:
    """Run ``num_steps`` transitions of ``len(x0)`` independent chains; keep only the end.

    Unlike ``umrf.sample_chains`` nothing but the final positions is stored,
    which is what a training step needs.

    Args:
      alg: any ``SamplingAlgorithm``.
      key: PRNG key.
      x0: start positions with a leading chain axis.
      params: model parameters (treated as constants).
      num_steps: number of transitions (static, ``>= 0``).

    Returns:
      ``(positions, NegativesInfo)``.
    """
    _check_alg(alg)
    num_steps = check_positive_int("num_steps", num_steps, allow_zero=True)
    n = _leading("x0", x0)
    params = jax.lax.stop_gradient(params)
    states = jax.vmap(alg.init, in_axes=(0, None))(x0, params)
    if num_steps == 0:
        return states.position, NegativesInfo(jnp.ones(()), jnp.zeros((), jnp.int32))
    step = jax.vmap(alg.step, in_axes=(0, 0, None))

    def body(carry, k):
        states, acc, diverged = carry
        states, info = step(jax.random.split(k, n), states, params)
        acc = acc + jnp.mean(info.acceptance_rate.astype(jnp.float32))
        return (states, acc, diverged | info.diverged), None

    init = (states, jnp.zeros((), jnp.float32), jnp.zeros((n,), bool))
    (states, acc, diverged), _ = jax.lax.scan(body, init, jax.random.split(key, num_steps))
    info = NegativesInfo(
        acceptance_rate=acc / num_steps, num_diverged=jnp.sum(diverged).astype(jnp.int32)
    )
    return jax.lax.stop_gradient(states.position), info


def cd_negatives(
    alg: SamplingAlgorithm, key: jax.Array, x_data: Any, params: Any, *, num_steps: int
) -> tuple[Any, NegativesInfo]:
    """CD-k negatives: ``num_steps`` MCMC steps started at the data batch (Hinton 2002).

    Args:
      alg: any ``SamplingAlgorithm`` targeting ``p_θ``.
      key: PRNG key.
      x_data: data batch (leading batch axis); one chain per example.
      params: current parameters.
      num_steps: keyword-only ``k >= 1``.

    Returns:
      ``(x_model, NegativesInfo)``.
    """
    check_positive_int("num_steps", num_steps)
    return run_chains(alg, key, x_data, params, num_steps)


def pcd_negatives(
    alg: SamplingAlgorithm, key: jax.Array, chains: Any, params: Any, *, num_steps: int
) -> tuple[Any, NegativesInfo]:
    """Persistent-CD negatives: continue the persistent chains by ``num_steps`` steps.

    Feed the returned positions back as ``chains`` at the next parameter
    update (Tieleman 2008): the chains then track the slowly changing model.

    Args:
      alg: any ``SamplingAlgorithm`` targeting ``p_θ``.
      key: PRNG key.
      chains: current chain positions (leading chain axis).
      params: current parameters.
      num_steps: keyword-only ``k >= 1``.

    Returns:
      ``(new_chains, NegativesInfo)``; ``new_chains`` are the negatives.
    """
    check_positive_int("num_steps", num_steps)
    return run_chains(alg, key, chains, params, num_steps)


def replay_negatives(
    alg: SamplingAlgorithm,
    buffer: ReplayBuffer,
    key: jax.Array,
    buffer_state: ReplayBufferState,
    params: Any,
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
      buffer_state: current :class:`ReplayBufferState`.
      params: current parameters.
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
    x0, indices = buffer.sample(k_read, buffer_state, batch_size)
    x, info = run_chains(alg, k_run, x0, params, num_steps)
    return x, buffer.update(buffer_state, indices, x), info
