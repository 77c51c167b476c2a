"""Chains across devices and hosts.

Independent MCMC chains are embarrassingly parallel: umrf shards the chain
axis (the leading axis of ``x0``, of every state leaf and of the per-chain
keys) over a one-dimensional mesh whose axis is named ``"chains"``, and
replicates ``params``. Because each chain's random keys depend only on the
user's key and the chain/step indices (see :func:`umrf.sample_chains`), a
sharded run gives the same chains as a one-device run.

Single host, several devices::

    mesh = umrf.sharding.chains_mesh()                 # all local devices
    final, trace = umrf.sample_chains(alg, key, params, x0, num_steps=1000, mesh=mesh)

(On CPU, ``jax.config.update("jax_num_cpu_devices", 8)`` before any JAX
call gives 8 devices, which is how the test suite checks the equality.)

Multi-host recipe (one process per host, e.g. under SLURM or on a TPU pod):

1. Call ``jax.distributed.initialize()`` first thing in every process
   (coordinator address, process count and id come from the environment on
   TPU/SLURM, or pass them explicitly).
2. Build ONE global mesh over every device of every process:
   ``mesh = umrf.sharding.chains_mesh(jax.devices())`` (``jax.devices()`` is
   global after step 1; ``jax.local_devices()`` is this host's share).
3. Every process creates the same ``key`` and ``params`` (same seed) and its
   own block of initial positions, ``num_chains // jax.process_count()``
   rows, then assembles the global array with
   ``x0 = umrf.sharding.global_chains(local_x0, mesh)`` (a wrapper of
   ``jax.make_array_from_process_local_data``).
4. Call ``umrf.sample_chains(alg, key, params, x0, num_steps=n, mesh=mesh)`` in every
   process (SPMD: same program, same arguments). Results are global arrays;
   read this host's chains with ``umrf.sharding.local_chains(trace)`` or
   gather with ``jax.experimental.multihost_utils.process_allgather``.

``sample_chains`` places ``params`` and ``key`` on the mesh with
:func:`replicate` (and an ``x0`` that is not yet global with
:func:`shard_chains`), which assemble each process's copy device to device:
a value that differs between processes is not detected, so build them from
the same seed. ``umrf.training.fit(..., mesh=mesh)`` over a multi-process
mesh follows the same rules, and its checkpoints need a ``checkpoint_dir``
that every process sees (see :func:`umrf.training.save_checkpoint`).
tests/test_multiprocess.py runs this recipe with two processes on one
machine (4 CPU devices each, gloo collectives) and checks it against a
one-process run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = [
    "chains_mesh",
    "chains_sharding",
    "global_chains",
    "local_chains",
    "put_global",
    "replicate",
    "shard_chains",
]

CHAINS = "chains"


def chains_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A one-axis mesh named ``"chains"`` over ``devices`` (default ``jax.devices()``).

    Args:
      devices: the devices to spread chains over; default all devices of
        all processes.

    Returns:
      ``jax.sharding.Mesh(devices, ("chains",))``.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("`devices` is empty; pass at least one jax device.")
    for d in devices:
        if not isinstance(d, jax.Device):
            raise TypeError(f"`devices` must hold jax devices; got {type(d).__name__}.")
    return Mesh(np.array(devices), (CHAINS,))


def chains_sharding(mesh: Mesh, *, leading: int = 0) -> NamedSharding:
    """``NamedSharding`` that shards axis ``leading`` over the mesh's ``"chains"`` axis.

    ``leading=0`` for positions/states, ``leading=1`` for a trace
    ``(num_draws, num_chains, ...)``.
    """
    if CHAINS not in mesh.axis_names:
        raise ValueError(f"`mesh` needs an axis named 'chains'; got {mesh.axis_names}.")
    return NamedSharding(mesh, P(*([None] * leading), CHAINS))


def put_global(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """Place every leaf of ``tree`` with ``sharding``, also when it spans several processes.

    Each leaf is this process's copy of the *whole* (global) value; SPMD
    programs pass the same value in every process. A sharding of this
    process's devices only is a plain ``jax.device_put``. A sharding over the
    devices of several processes (multi-host) is assembled from this
    process's own slices, device to device (no host round trip and no
    cross-process check: the value must already be equal everywhere, e.g.
    built from the same seed). Leaves that are already global arrays (not
    fully addressable, e.g. from :func:`global_chains`) are kept as they are.

    Args:
      tree: a pytree of arrays (jax or numpy), Python scalars or PRNG keys.
      sharding: the target ``jax.sharding.Sharding``.

    Returns:
      ``tree`` with every leaf a ``jax.Array`` laid out by ``sharding``.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> mesh = umrf.sharding.chains_mesh()
      >>> x = umrf.sharding.put_global(jnp.arange(8.0), umrf.sharding.chains_sharding(mesh))
      >>> len(x.sharding.device_set) == len(jax.devices()), x.tolist()[:3]
      (True, [0.0, 1.0, 2.0])
    """
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def one(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return leaf
        if not isinstance(leaf, jax.Array):
            leaf = np.asarray(leaf)
        shape = leaf.shape
        shards = [
            jax.device_put(leaf[index], device)
            for device, index in sharding.addressable_devices_indices_map(shape).items()
        ]
        return jax.make_array_from_single_device_arrays(shape, sharding, shards)

    return jax.tree_util.tree_map(one, tree)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Copy every leaf of ``tree`` to every device of ``mesh`` (``NamedSharding(mesh, P())``).

    How :func:`umrf.sample_chains` places ``params`` and ``key`` on a mesh;
    multi-host safe (see :func:`put_global`: every process passes the same
    value).
    """
    return put_global(tree, NamedSharding(mesh, P()))


def shard_chains(tree: Any, mesh: Mesh) -> Any:
    """Place every leaf of ``tree`` (leading chain axis) on ``mesh``, sharded by chain.

    ``tree`` holds ALL chains (the same value in every process); multi-host
    safe (see :func:`put_global`). To give each process only its own rows,
    use :func:`global_chains` instead.
    """
    return put_global(tree, chains_sharding(mesh))


def global_chains(local_tree: Any, mesh: Mesh) -> Any:
    """Assemble per-process blocks of chains into global arrays (multi-host).

    Each process passes its own ``local_tree`` (leading axis = this process's
    chains); the result's leading axis is the concatenation over processes in
    process order. On a single process this equals :func:`shard_chains`.
    """
    sharding = chains_sharding(mesh)
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_tree
    )


def local_chains(tree: Any) -> Any:
    """This process's rows of globally sharded arrays, as numpy (leading axis kept).

    For a trace (chain axis second) the rows are taken along axis 1.
    """

    def one(x: jax.Array) -> np.ndarray:
        shards = sorted(x.addressable_shards, key=lambda s: tuple(i.start or 0 for i in s.index))
        blocks, seen = [], set()
        for s in shards:
            idx = tuple((i.start, i.stop) for i in s.index)
            if idx not in seen:
                seen.add(idx)
                blocks.append(np.asarray(s.data))
        axis = next((k for k, sl in enumerate(shards[0].index) if sl != slice(None)), 0)
        return np.concatenate(blocks, axis=axis) if len(blocks) > 1 else blocks[0]

    return jax.tree_util.tree_map(one, tree)
