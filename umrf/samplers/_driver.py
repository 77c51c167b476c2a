"""The many-chain driver: any ``SamplingAlgorithm`` over many chains and devices.

``sample_chains`` compiles ONE program, ``lax.scan`` over steps of a
``jax.vmap`` over chains, and caches it: a second call with an equal
algorithm, the same ``num_steps``/``thin``/``mesh`` and the same input
shapes and dtypes runs the cached executable without retracing (a training
loop may call it every iteration). umrf's sampler constructors return
algorithms that compare equal when built from the same energy function object
and hyperparameters, so even rebuilding the sampler each iteration reuses the
program.

Random numbers. The chain keys are ``split(key, num_chains)`` and chain ``c``
uses ``fold_in(chain_key[c], t)`` at step ``t`` (counted from 0 over the whole
run). Every multi-chain runner in umrf (this driver, ``run_chains`` and the
CD/PCD/replay negatives, ``mala_warmup``) uses this one schedule through
:func:`scan_steps`.

What "the same for the same key" promises. The random draws depend only on
``key``, the chain index and the step index, never on how chains are laid out
over devices or processes, or how the run is chunked for progress reporting.
So the draws are bitwise identical across layouts; a discrete sampler's states
(Gibbs) are then bitwise equal too, because their updates compare random bits
with probabilities computed the same way. Floating-point positions (Langevin
samplers) agree to rounding, not bitwise: XLA may vectorise the per-device
batch of a sharded run differently from the whole batch (e.g. AVX-512 code for
32 chains, another for 4), and rounding differences of a few ulps per step
then propagate along the chain.

Sharding. With ``mesh`` (a ``jax.sharding.Mesh`` with a ``"chains"`` axis,
see :func:`umrf.sharding.chains_mesh`) the chain axis of the positions, the
states and the keys is sharded with ``NamedSharding(mesh, P("chains"))``
(``P(None, "chains")`` for the trace) and ``params`` are replicated. Chains
never communicate, so each device runs its own chains.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from umrf._chain_loop import CHAINS_AXIS, chain_keys, constrain, scan_steps
from umrf._validation import check_finite, check_key, check_positive_int, is_concrete
from umrf.samplers._base import SamplingAlgorithm
from umrf.sharding import replicate, shard_chains

__all__ = ["Trace", "sample_chains"]

_CHAINS = CHAINS_AXIS
_DEFAULT_CHUNKS = 20


class Trace(NamedTuple):
    """Thinned record of a many-chain run.

    Attributes:
      position: positions after steps ``thin, 2·thin, ...``; every leaf has
        leading axes ``(num_steps // thin, num_chains)``.
      info: the algorithm's Info of those same steps, same leading axes.
    """

    position: Any
    info: Any


# --------------------------------------------------------------------------- the one loop


def init_chains(alg: SamplingAlgorithm, params: Any, x0: Any, mesh: Mesh | None = None) -> Any:
    """``vmap(alg.init)`` over the chain axis of ``x0`` (sharded over ``mesh``)."""
    state = jax.vmap(alg.init, in_axes=(0, None))(constrain(x0, mesh), params)
    return constrain(state, mesh)


def _trace_transition(alg: SamplingAlgorithm, params: Any, mesh: Mesh | None) -> Callable:
    vstep = jax.vmap(alg.step, in_axes=(0, 0, None))

    def transition(keys: jax.Array, state: Any, t: jax.Array) -> tuple[Any, Trace]:
        state, info = vstep(keys, state, params)
        state = constrain(state, mesh)
        return state, Trace(state.position, info)

    return transition


def _advance(
    alg: SamplingAlgorithm,
    n_record: int,
    thin: int,
    n_tail: int,
    mesh: Mesh | None,
    state: Any,
    keys: jax.Array,
    params: Any,
    t0: jax.Array,
) -> tuple[Any, Trace]:
    return scan_steps(
        _trace_transition(alg, params, mesh),
        state,
        keys,
        t0,
        num_records=n_record,
        thin=thin,
        num_tail=n_tail,
    )


def _init_program(
    alg: SamplingAlgorithm, mesh: Mesh | None, key: jax.Array, params: Any, x0: Any
) -> tuple[Any, jax.Array]:
    num_chains = jax.tree_util.tree_leaves(x0)[0].shape[0]
    return init_chains(alg, params, x0, mesh), chain_keys(key, num_chains, mesh)


def _full_program(
    alg: SamplingAlgorithm,
    n_record: int,
    thin: int,
    n_tail: int,
    mesh: Mesh | None,
    key: jax.Array,
    params: Any,
    x0: Any,
) -> tuple[Any, Trace]:
    state, keys = _init_program(alg, mesh, key, params, x0)
    return _advance(alg, n_record, thin, n_tail, mesh, state, keys, params, jnp.int32(0))


@functools.lru_cache(maxsize=128)
def _compiled(kind: str, alg: SamplingAlgorithm, *static: Any) -> Any:
    """Jitted program for ``kind`` ("full", "init", "chunk"), cached on its static args."""
    if kind == "full":
        return jax.jit(functools.partial(_full_program, alg, *static))
    if kind == "init":
        return jax.jit(functools.partial(_init_program, alg, *static))
    return jax.jit(functools.partial(_advance, alg, *static))


def _program(kind: str, alg: SamplingAlgorithm, *static: Any) -> Any:
    try:
        hash(alg)
    except TypeError:
        # An algorithm with traced hyperparameters (built inside jit): no
        # cache is possible and none is needed, we are already tracing.
        fns = {"full": _full_program, "init": _init_program, "chunk": _advance}
        return functools.partial(fns[kind], alg, *static)
    return _compiled(kind, alg, *static)


# --------------------------------------------------------------------------- validation


def check_alg(alg: Any) -> None:
    """Raise ``TypeError`` unless ``alg`` looks like a ``SamplingAlgorithm(init, step)``."""
    if not (hasattr(alg, "init") and hasattr(alg, "step")) or not (
        callable(alg.init) and callable(alg.step)
    ):
        raise TypeError(
            "`alg` must be a SamplingAlgorithm(init, step), e.g. umrf.samplers.mala(energy_fn, "
            f"step_size=0.1); got {type(alg).__name__}."
        )


def num_chains_of(x0: Any, name: str = "x0") -> int:
    """The common leading (chain) size of every leaf of ``x0``; clear errors otherwise."""
    leaves = jax.tree_util.tree_leaves(x0)
    if not leaves:
        raise ValueError(f"`{name}` is empty; pass initial positions with a leading chain axis.")
    sizes = set()
    for leaf in leaves:
        if jnp.ndim(leaf) == 0:
            raise ValueError(
                f"`{name}` must have a leading chain axis (shape (num_chains, ...)); got a "
                "scalar leaf. For one chain pass x[None]."
            )
        sizes.add(jnp.shape(leaf)[0])
    if len(sizes) != 1:
        raise ValueError(
            f"every leaf of `{name}` must have the same leading (chain) size; got sizes "
            f"{sorted(sizes)}."
        )
    n = sizes.pop()
    if n == 0:
        raise ValueError(f"`{name}` has zero chains; pass at least one initial position.")
    return int(n)


def check_mesh(mesh: Any, num_chains: int) -> None:
    """Raise unless ``mesh`` is None or a Mesh whose ``"chains"`` axis divides the chains."""
    if mesh is None:
        return
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"`mesh` must be a jax.sharding.Mesh (see umrf.sharding.chains_mesh); got "
            f"{type(mesh).__name__}."
        )
    if _CHAINS not in mesh.axis_names:
        raise ValueError(
            f"`mesh` must have an axis named 'chains'; got axes {mesh.axis_names}. "
            "Build it with umrf.sharding.chains_mesh()."
        )
    size = mesh.shape[_CHAINS]
    if num_chains % size:
        raise ValueError(
            f"the number of chains ({num_chains}) must be a multiple of the mesh's 'chains' axis "
            f"size ({size}); pad or trim `x0`."
        )


# --------------------------------------------------------------------------- public API


def sample_chains(
    alg: SamplingAlgorithm,
    key: jax.Array,
    params: Any,
    x0: Any,
    *,
    num_steps: int,
    thin: int = 1,
    mesh: Mesh | None = None,
    progress: bool | int = False,
) -> tuple[Any, Trace]:
    """Run many independent chains of ``alg`` in one compiled program.

    Chain ``c`` starts at ``x0[c]`` (state ``alg.init(x0[c], params)``) and
    takes ``num_steps`` steps ``alg.step(key_{c,t}, state, params)`` with
    ``key_{c,t} = fold_in(split(key, num_chains)[c], t)``. The loop is
    ``lax.scan`` over ``jax.vmap`` over chains; the program is cached (see
    the module docstring), so repeated calls with the same algorithm and
    shapes do not recompile, and new ``params``/``x0``/``key`` values are
    traced arguments.

    Args:
      alg: a ``SamplingAlgorithm(init, step)`` (ULA, MALA, annealed Langevin,
        Gibbs, ...). Positions may be float or int arrays or pytrees.
      key: a PRNG key (``jax.random.key(seed)``).
      params: the energy's parameters (any pytree; traced).
      x0: initial positions with a leading chain axis ``(num_chains, ...)``
        (a pytree whose leaves all share that leading size). The state is
        always rebuilt from positions with the *current* ``params`` (so
        persistent chains under changing parameters stay consistent).
      num_steps: keyword-only number of transitions per chain (``≥ 1``).
      thin: keyword-only; record every ``thin``-th state (``1 ≤ thin ≤
        num_steps``). The trace holds the states after steps ``thin,
        2·thin, ...``; leftover ``num_steps % thin`` steps still run and
        affect the final state.
      mesh: keyword-only ``Mesh`` with a ``"chains"`` axis to shard the
        chains over its devices; ``num_chains`` must be a multiple of its
        size. The random draws equal the unsharded run's for the same key
        (see the module docstring for what that promises).
      progress: keyword-only. ``False`` runs one program with no host
        round-trip. ``True`` (or an int, the number of chunks, default 20)
        splits the run into chunks of steps, each a cached compiled
        ``lax.scan``, and shows a tqdm bar updated once per chunk. The
        random draws are the same.

    Returns:
      ``(final_state, trace)``: the vmapped final State (leading axis
      ``num_chains``) and a :class:`Trace` ``(position, info)`` with leading
      axes ``(num_steps // thin, num_chains)``.

    Raises:
      TypeError/ValueError: for a non-algorithm, a bad key, ``x0`` without a
        common leading chain axis or with NaN/inf, non-positive
        ``num_steps``/``thin``, ``thin > num_steps``, or a mesh that does not
        divide the chains.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> alg = umrf.samplers.mala(lambda p, x: 0.5 * jnp.sum((x - p) ** 2), step_size=0.5)
      >>> x0 = jnp.zeros((64, 2))
      >>> final, trace = umrf.sample_chains(
      ...     alg, jax.random.key(0), jnp.ones(2), x0, num_steps=100, thin=10)
      >>> trace.position.shape, trace.info.acceptance_rate.shape
      ((10, 64, 2), (10, 64))
    """
    check_alg(alg)
    check_key(key)
    num_steps = check_positive_int("num_steps", num_steps)
    thin = check_positive_int("thin", thin)
    if thin > num_steps:
        raise ValueError(
            f"`thin` ({thin}) must be <= `num_steps` ({num_steps}); the trace would be empty."
        )
    num_chains = num_chains_of(x0)
    check_finite("x0", x0)
    check_mesh(mesh, num_chains)
    if mesh is not None:  # multi-host safe placement (every process passes the same values)
        if is_concrete(x0):
            x0 = shard_chains(x0, mesh)
        if is_concrete(params):
            params = replicate(params, mesh)
        if is_concrete(key):
            key = replicate(key, mesh)

    n_record, n_tail = divmod(num_steps, thin)
    if not progress:
        return _program("full", alg, n_record, thin, n_tail, mesh)(key, params, x0)
    return _run_chunked(alg, key, params, x0, n_record, thin, n_tail, mesh, progress)


def _run_chunked(
    alg: SamplingAlgorithm,
    key: jax.Array,
    params: Any,
    x0: Any,
    n_record: int,
    thin: int,
    n_tail: int,
    mesh: Mesh | None,
    progress: bool | int,
) -> tuple[Any, Trace]:
    from tqdm.auto import tqdm

    num_chunks = _DEFAULT_CHUNKS if progress is True else check_positive_int("progress", progress)
    per_chunk = max(1, n_record // num_chunks)
    full_chunks, rest = divmod(n_record, per_chunk)
    plan = [(per_chunk, 0)] * full_chunks
    if rest or n_tail:
        plan.append((rest, n_tail))

    state, keys = _program("init", alg, mesh)(key, params, x0)
    pieces, t = [], 0
    with tqdm(total=n_record * thin + n_tail, unit="step", desc="sample_chains") as bar:
        for records, tail in plan:
            run = _program("chunk", alg, records, thin, tail, mesh)
            state, piece = run(state, keys, params, jnp.int32(t))
            if records:
                pieces.append(piece)
            jax.block_until_ready(state)  # one host sync per chunk, never per step
            steps = records * thin + tail
            t += steps
            bar.update(steps)
    trace = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=0), *pieces)
    return state, trace


def _clear_cache() -> None:
    """Drop every cached compiled program (for tests and long sessions)."""
    _compiled.cache_clear()
