"""Reference loops shared by the cases: umrf's key schedule without a sampler around it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["per_chain_loop"]


def per_chain_loop(
    step: Callable[[jax.Array, Any], Any],
    init: Callable[[Any], Any],
    chains: int,
    steps: int,
) -> Callable[[jax.Array, Any], Any]:
    """Jitted ``run(key, x0)``: ``lax.scan`` over steps of ``vmap(step)`` over chains.

    Chain ``c`` uses ``fold_in(split(key, chains)[c], t)`` at step ``t``, the
    schedule of :func:`umrf.sample_chains`, so a peer's kernel or a reference
    loop run here pays exactly the random-key cost umrf pays.
    """

    @jax.jit
    def run(key: jax.Array, x0: Any) -> Any:
        chain_keys = jax.random.split(key, chains)
        state = jax.vmap(init)(x0)
        fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
        vstep = jax.vmap(step)

        def body(state: Any, t: jax.Array) -> tuple[Any, None]:
            return vstep(fold(chain_keys, t), state), None

        state, _ = jax.lax.scan(body, state, jnp.arange(steps))
        return state

    return run
