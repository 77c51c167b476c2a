"""The state a training run carries, and its initialisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["LossFn", "TrainState", "init_train_state"]

#: ``loss_fn(key, params, batch, extra) -> (loss, new_extra)``.
LossFn = Callable[[Any, Any, jax.Array, Any], tuple[jax.Array, Any]]


class TrainState(NamedTuple):
    """Everything a training run carries from one step to the next.

    Attributes:
      step: int32 scalar, number of updates applied.
      params: model parameters (any pytree).
      opt_state: optax optimiser state.
      key: PRNG key; each step splits it into the next key, a minibatch key
        and the loss's key.
      extra: any pytree carried by the loss (``None``, persistent chains, a
        ``ReplayBufferState``, ...).
    """

    step: jax.Array
    params: Any
    opt_state: Any
    key: jax.Array
    extra: Any


def init_train_state(
    optimizer: optax.GradientTransformation, key: jax.Array, params: Any, *, extra: Any = None
) -> TrainState:
    """Create the initial :class:`TrainState` (step 0).

    Args:
      optimizer: the optax ``GradientTransformation`` whose state is initialised.
      key: the run's PRNG key.
      params: initial parameters.
      extra: keyword-only pytree carried by the loss (chains, a replay buffer).

    Returns:
      ``TrainState(step=0, params, optimizer.init(params), key, extra)``.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, umrf
      >>> s = umrf.training.init_train_state(optax.sgd(0.1), jax.random.key(0), jnp.zeros(2))
      >>> int(s.step), s.params.shape
      (0, (2,))
    """
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=optimizer.init(params),
        key=key,
        extra=extra,
    )
