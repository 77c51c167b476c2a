"""The one key schedule and step loop of every multi-chain runner in umrf.

Chain ``c`` of a run started from ``key`` uses ``fold_in(split(key, C)[c], t)``
at global step ``t``. ``umrf.samplers.sample_chains``, ``run_chains`` and the
CD/PCD/replay negatives, ``mala_warmup`` and ``umrf.inference.ais`` all step
through :func:`scan_steps`, so the same key gives the same draws in each of
them, whatever the device layout or chunking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["CHAINS_AXIS", "chain_keys", "constrain", "scan_steps", "step_keys"]

#: The mesh axis name that carries chains (see ``umrf.sharding.chains_mesh``).
CHAINS_AXIS = "chains"


def constrain(tree: Any, mesh: Mesh | None, leading: int = 0) -> Any:
    """Shard the chain axis (axis ``leading``) of every leaf over ``mesh`` (no-op without one)."""
    if mesh is None:
        return tree
    spec = P(*([None] * leading), CHAINS_AXIS)

    def one(leaf: Any) -> Any:
        return jax.lax.with_sharding_constraint(leaf, NamedSharding(mesh, spec))

    return jax.tree_util.tree_map(one, tree)


def chain_keys(key: jax.Array, num_chains: int, mesh: Mesh | None = None) -> jax.Array:
    """The per-chain keys ``split(key, num_chains)`` (the one key schedule of every runner)."""
    return constrain(jax.random.split(key, num_chains), mesh)


def step_keys(keys: jax.Array, t: jax.Array) -> jax.Array:
    """Chain ``c``'s key at global step ``t``: ``fold_in(keys[c], t)``."""
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, t)


def scan_steps(
    transition: Callable[[jax.Array, Any, jax.Array], tuple[Any, Any]],
    carry: Any,
    keys: jax.Array,
    t0: jax.Array,
    *,
    num_records: int,
    thin: int = 1,
    num_tail: int = 0,
) -> tuple[Any, Any]:
    """Run ``num_records·thin + num_tail`` steps from step ``t0``; keep every ``thin``-th output.

    The single loop behind every multi-chain runner (:func:`sample_chains`,
    ``run_chains`` and the negatives, ``mala_warmup``): step ``t`` calls
    ``transition(step_keys(keys, t), carry, t) -> (carry, out)``, so the
    random numbers depend only on the key, the chain and the step index.
    The outputs of steps ``t0 + thin - 1, t0 + 2·thin - 1, …`` are stacked;
    the ``num_tail`` leftover steps run after them.
    """

    def one(carry: Any, t: jax.Array) -> tuple[Any, Any]:
        return transition(step_keys(keys, t), carry, t)

    def silent(t: jax.Array, carry: Any) -> Any:
        return one(carry, t)[0]

    def record(carry: Any, k: jax.Array) -> tuple[Any, Any]:
        start = t0 + k * thin
        if thin > 1:
            carry = jax.lax.fori_loop(start, start + thin - 1, silent, carry)
        return one(carry, start + thin - 1)

    carry, outs = jax.lax.scan(record, carry, jnp.arange(num_records, dtype=jnp.int32))
    if num_tail:
        start = t0 + num_records * thin
        carry = jax.lax.fori_loop(start, start + num_tail, silent, carry)
    return carry, outs
