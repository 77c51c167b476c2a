"""A small, optional training loop for energy-based models (jitted optax steps).

umrf's losses are plain functions (DESIGN.md §4) and any hand-written optax
loop trains them. :func:`fit` adds what long runs need and nothing more:

* one jitted step ``(TrainState, data) -> (TrainState, loss)`` that draws a
  minibatch, evaluates ``loss_fn`` with ``jax.value_and_grad`` and applies
  an optax update; it is compiled once per ``(loss_fn, optimizer, shapes)``
  and reused for new parameters;
* a tqdm progress bar, periodic evaluation (``eval_fn``);
* checkpoints of the whole :class:`TrainState` (step, params, optimiser
  state, PRNG key and an ``extra`` pytree such as persistent chains or a
  replay buffer) in a pickle-free ``.npz`` file; since every random number
  of a step is derived from the saved key, an interrupted run that resumes
  from its last checkpoint reproduces the uninterrupted run bit for bit;
* data parallelism with a ``jax.sharding.Mesh``: the minibatch is sharded
  along the mesh axis, parameters and optimiser state are replicated, and
  XLA inserts the gradient all-reduce.

A non-finite loss stops the run at that step: the state *before* the bad
update is returned and ``history.diverged_at`` names the step (the loss is
never replaced).

It also provides :func:`mmd`, a sample-quality figure (kernel two-sample
statistic) for comparing model samples with held-out data.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from umrf._validation import check_finite, check_positive, check_positive_int

__all__ = [
    "History",
    "TrainState",
    "fit",
    "init_train_state",
    "latest_checkpoint",
    "load_checkpoint",
    "mmd",
    "save_checkpoint",
    "train_step",
]

#: ``loss_fn(params, batch, key, extra) -> (loss, new_extra)``.
LossFn = Callable[[Any, Any, jax.Array, Any], tuple[jax.Array, Any]]

_FORMAT = "umrf-checkpoint-v1"
_CKPT_RE = re.compile(r"^ckpt_(\d{9})\.npz$")


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


@dataclass
class History:
    """What :func:`fit` observed.

    Attributes:
      steps: step index after each recorded update.
      losses: loss of each recorded update (every ``log_every`` steps).
      evals: ``(step, metrics)`` pairs from ``eval_fn``.
      diverged_at: the step whose loss was non-finite (the run stopped
        there, before applying it), else ``None``.
      resumed_from: the checkpoint step a run resumed from, else ``None``.
    """

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    evals: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    diverged_at: int | None = None
    resumed_from: int | None = None


def init_train_state(
    params: Any, optimizer: optax.GradientTransformation, key: jax.Array, extra: Any = None
) -> TrainState:
    """Create the initial :class:`TrainState` (step 0)."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=optimizer.init(params),
        key=key,
        extra=extra,
    )


def _step_impl(
    state: TrainState,
    data: Any,
    *,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    batch_sharding: NamedSharding | None,
) -> tuple[TrainState, jax.Array]:
    key, k_batch, k_loss = jax.random.split(state.key, 3)
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    idx = jax.random.randint(k_batch, (batch_size,), 0, n)
    batch = jax.tree_util.tree_map(lambda a: a[idx], data)
    if batch_sharding is not None:
        batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
    (loss, extra), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, batch, k_loss, state.extra
    )
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(state.step + 1, params, opt_state, key, extra), loss


# XLA option that turns off jaxlib's YNNPACK fusions on CPU, so float32 dots use XLA's
# own (Eigen) kernels. Measured in benchmarks/training_throughput.py (2-core EPYC):
# PCD-20 and DSM steps of a 128-wide MLP on batch 256 run 1.4x faster, a 256-wide one
# 1.0-1.2x; the CPU default of "auto" below.
CPU_COMPILER_OPTIONS: dict[str, str] = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.lru_cache(maxsize=1)
def _auto_compiler_options() -> tuple[tuple[str, str], ...]:
    """``CPU_COMPILER_OPTIONS`` on the CPU backend if this jaxlib accepts them, else none."""
    if jax.default_backend() != "cpu":
        return ()
    options = tuple(CPU_COMPILER_OPTIONS.items())
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(options)).lower(jnp.zeros(())).compile()
    except Exception:  # noqa: BLE001 - an XLA without the option: keep its defaults
        return ()
    return options


@functools.lru_cache(maxsize=8)
def _jitted_step(options: tuple[tuple[str, str], ...]) -> Callable[..., Any]:
    return jax.jit(
        _step_impl,
        static_argnames=("loss_fn", "optimizer", "batch_size", "batch_sharding"),
        compiler_options=dict(options) or None,
    )


def _resolve_compiler_options(compiler_options: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(compiler_options, str):
        if compiler_options != "auto":
            raise ValueError(
                f'`compiler_options` must be "auto", None or a dict; got {compiler_options!r}.'
            )
        return _auto_compiler_options()
    if compiler_options is None:
        return ()
    if not isinstance(compiler_options, dict):
        raise TypeError(
            f'`compiler_options` must be "auto", None or a dict; got '
            f"{type(compiler_options).__name__}."
        )
    return tuple(sorted((str(k), str(v)) for k, v in compiler_options.items()))


def train_step(
    state: TrainState,
    data: Any,
    *,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    batch_sharding: NamedSharding | None = None,
    compiler_options: dict[str, str] | str | None = "auto",
) -> tuple[TrainState, jax.Array]:
    """One jitted update: draw a minibatch, differentiate ``loss_fn``, apply optax.

    The minibatch is ``batch_size`` rows of ``data`` drawn uniformly with
    replacement from a key split off ``state.key``, so a step is a pure
    function of ``(state, data)``. Compiled once per
    ``(loss_fn, optimizer, batch_size, sharding, compiler options, shapes)``.

    Args:
      state: current :class:`TrainState`.
      data: training set, a pytree whose leaves have the same leading size.
      loss_fn: ``loss_fn(params, batch, key, extra) -> (loss, new_extra)``.
      optimizer: an optax ``GradientTransformation``.
      batch_size: minibatch size.
      batch_sharding: optional sharding of the minibatch (data parallelism).
      compiler_options: XLA options for compiling the step. ``"auto"`` (default)
        uses :data:`CPU_COMPILER_OPTIONS` on the CPU backend (XLA's own dot
        kernels instead of the YNNPACK fusion, faster for the small matrices of
        EBM training; see the README's CPU performance note) and nothing
        elsewhere; ``None`` keeps XLA's defaults; a dict is passed as is.

    Returns:
      ``(new_state, loss)``.
    """
    return _jitted_step(_resolve_compiler_options(compiler_options))(
        state,
        data,
        loss_fn=loss_fn,
        optimizer=optimizer,
        batch_size=batch_size,
        batch_sharding=batch_sharding,
    )


# --------------------------------------------------------------------------- checkpoints


def _to_numpy(leaf: Any) -> tuple[np.ndarray, dict[str, Any]]:
    meta: dict[str, Any] = {}
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        meta["key_impl"] = str(jax.random.key_impl(leaf))
        leaf = jax.random.key_data(leaf)
    arr = np.asarray(jax.device_get(leaf))
    meta["dtype"] = str(arr.dtype)
    meta["shape"] = list(arr.shape)
    if arr.dtype.kind == "V" or arr.dtype.hasobject:  # e.g. bfloat16: store the raw bits
        if arr.dtype.hasobject:
            raise TypeError("checkpoint leaves must be numeric arrays, not Python objects.")
        arr = arr.view(f"u{arr.dtype.itemsize}")
        meta["raw_bits"] = True
    return arr, meta


def save_checkpoint(path: str | os.PathLike, state: Any) -> Path:
    """Save any pytree of arrays (e.g. a :class:`TrainState`) without pickle.

    The file is a ``numpy`` ``.npz`` holding the flattened leaves
    (``leaf_00000``, ...; PRNG keys as their raw key data) and a JSON
    metadata string (format, step, tree structure, per-leaf shape, dtype and
    key implementation). It is written to a temporary file and renamed, so
    an interrupted save never leaves a truncated checkpoint.

    Args:
      path: destination file (``.npz``).
      state: pytree to save.

    Returns:
      The path written.
    """
    path = Path(path)
    leaves, treedef = jax.tree_util.tree_flatten(state)
    arrays, metas = {}, []
    for i, leaf in enumerate(leaves):
        arr, meta = _to_numpy(leaf)
        arrays[f"leaf_{i:05d}"] = arr
        metas.append(meta)
    step = getattr(state, "step", None)
    metadata = {
        "format": _FORMAT,
        "step": None if step is None else int(jax.device_get(step)),
        "treedef": str(treedef),
        "leaves": metas,
    }
    arrays["__metadata__"] = np.array(json.dumps(metadata))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, template: Any) -> Any:
    """Restore a checkpoint into the structure of ``template``.

    Args:
      path: a file written by :func:`save_checkpoint`.
      template: a pytree with the same structure, shapes and dtypes (e.g.
        the initial :class:`TrainState` of the run); its values are ignored.

    Returns:
      A pytree like ``template`` holding the saved values (PRNG keys are
      rewrapped with their saved implementation).

    Raises:
      ValueError: a file of another format, or a structure, shape or dtype
        that differs from ``template``.
    """
    with np.load(path, allow_pickle=False) as npz:
        metadata = json.loads(str(npz["__metadata__"]))
        if metadata.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a umrf checkpoint (format {metadata.get('format')}).")
        leaves, treedef = jax.tree_util.tree_flatten(template)
        if str(treedef) != metadata["treedef"] or len(leaves) != len(metadata["leaves"]):
            raise ValueError(
                f"checkpoint {path} has a different pytree structure than `template`; restore "
                "into a template built exactly as for the saved run (same model, optimiser, extra)."
            )
        out = []
        for i, (leaf, meta) in enumerate(zip(leaves, metadata["leaves"], strict=True)):
            arr = npz[f"leaf_{i:05d}"]
            if meta.get("raw_bits"):
                arr = arr.view(jnp.dtype(meta["dtype"]))
            is_key = "key_impl" in meta
            tmpl = jax.random.key_data(leaf) if is_key else leaf
            t_shape, t_dtype = tuple(jnp.shape(tmpl)), jnp.result_type(tmpl)
            if tuple(arr.shape) != t_shape or arr.dtype != t_dtype:
                raise ValueError(
                    f"checkpoint leaf {i} has shape {arr.shape} and dtype {arr.dtype}, but the "
                    f"template has {t_shape} and {t_dtype}."
                )
            value = jnp.asarray(arr)
            if is_key:
                value = jax.random.wrap_key_data(value, impl=meta["key_impl"])
            out.append(value)
    return jax.tree_util.tree_unflatten(treedef, out)


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """Return the checkpoint with the highest step in ``directory`` (or ``None``)."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = sorted(p for p in directory.iterdir() if _CKPT_RE.match(p.name))
    return found[-1] if found else None


def _checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"ckpt_{step:09d}.npz"


def _prune(directory: Path, keep: int) -> None:
    found = sorted(p for p in directory.iterdir() if _CKPT_RE.match(p.name))
    for p in found[:-keep]:
        p.unlink()


# --------------------------------------------------------------------------- fit


def fit(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    params: Any,
    data: Any,
    *,
    key: jax.Array,
    num_steps: int,
    batch_size: int,
    extra: Any = None,
    eval_fn: Callable[[TrainState], dict[str, Any]] | None = None,
    eval_every: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    keep_checkpoints: int = 2,
    resume: bool = True,
    mesh: Mesh | None = None,
    batch_axis: str | None = None,
    progress: bool = True,
    log_every: int = 1,
    desc: str = "train",
    compiler_options: dict[str, str] | str | None = "auto",
) -> tuple[TrainState, History]:
    """Minimise ``loss_fn`` with jitted optax steps; evaluate, checkpoint, resume.

    Each step splits the state's key into ``(next_key, batch_key,
    loss_key)``, draws ``batch_size`` rows of ``data`` uniformly with
    replacement, and applies ``optimizer`` to
    ``jax.value_and_grad(loss_fn, has_aux=True)(params, batch, loss_key, extra)``.

    Example ``loss_fn`` for denoising score matching (no extra state)::

        def loss_fn(params, batch, key, extra):
            loss = umrf.losses.denoising_score_matching(score_fn, params, batch, key, sigma=0.1)
            return loss, extra

    and for persistent CD (the chains are the extra state)::

        def loss_fn(params, batch, key, chains):
            chains, _ = umrf.samplers.pcd_negatives(alg, key, chains, params, num_steps=20)
            return umrf.losses.contrastive_divergence(energy_fn, params, batch, chains), chains

    Args:
      loss_fn: ``loss_fn(params, batch, key, extra) -> (loss, new_extra)``;
        reuse the same function object to reuse the compiled step.
      optimizer: optax ``GradientTransformation``; reuse the same object (with
        the same ``loss_fn``) to reuse the compiled step.
      params: initial parameters (ignored when resuming from a checkpoint).
      data: training set; pytree with a common leading axis.
      key: PRNG key of the run.
      num_steps: total number of updates (a resumed run continues up to it).
      batch_size: minibatch size (a multiple of the mesh axis size with ``mesh``).
      extra: initial extra state carried by ``loss_fn``.
      eval_fn: optional ``eval_fn(state) -> dict`` of scalars, called every
        ``eval_every`` steps and at the end (it must not change the state).
      eval_every: evaluation period in steps (0: only at the end).
      checkpoint_dir: directory for checkpoints ``ckpt_<step>.npz``.
      checkpoint_every: checkpoint period (0: only at the end).
      keep_checkpoints: how many recent checkpoints to keep.
      resume: continue from the latest checkpoint in ``checkpoint_dir``.
      mesh: optional device mesh for data parallelism.
      batch_axis: mesh axis that shards the batch (default: the first).
      progress: show a tqdm progress bar.
      log_every: record the loss every this many steps (it is checked for
        finiteness at every step regardless).
      desc: progress-bar label.
      compiler_options: XLA options of the jitted step, see :func:`train_step`.

    Returns:
      ``(state, history)``: the final :class:`TrainState` and a :class:`History`.

    Raises:
      ValueError: bad sizes or periods, non-finite data, a batch that does
        not divide over the mesh, or a checkpoint that does not fit.
    """
    num_steps = check_positive_int("num_steps", num_steps, allow_zero=True)
    batch_size = check_positive_int("batch_size", batch_size)
    eval_every = check_positive_int("eval_every", eval_every, allow_zero=True)
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every, allow_zero=True)
    keep_checkpoints = check_positive_int("keep_checkpoints", keep_checkpoints)
    log_every = check_positive_int("log_every", log_every)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"`optimizer` must be an optax.GradientTransformation; got {optimizer!r}.")
    _resolve_compiler_options(compiler_options)  # a bad value fails here, before any work
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves or any(jnp.ndim(a) == 0 for a in leaves):
        raise ValueError("`data` must be an array (or pytree) with a leading example axis.")
    if len({jnp.shape(a)[0] for a in leaves}) != 1 or jnp.shape(leaves[0])[0] == 0:
        raise ValueError("every leaf of `data` must have the same, non-zero leading size.")
    check_finite("data", data)

    batch_sharding = None
    if mesh is not None:
        axis = batch_axis or mesh.axis_names[0]
        if axis not in mesh.axis_names:
            raise ValueError(f"`batch_axis` {axis!r} is not an axis of `mesh` {mesh.axis_names}.")
        if batch_size % mesh.shape[axis] != 0:
            raise ValueError(
                f"`batch_size` {batch_size} must be a multiple of the mesh axis size "
                f"{mesh.shape[axis]} ({axis!r}) to shard the batch."
            )
        batch_sharding = NamedSharding(mesh, PartitionSpec(axis))

    state = init_train_state(params, optimizer, key, extra)
    history = History()
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt_dir is not None and resume:
        last = latest_checkpoint(ckpt_dir)
        if last is not None:
            state = load_checkpoint(last, state)
            history.resumed_from = int(state.step)
    if mesh is not None:
        replicated = NamedSharding(mesh, PartitionSpec())
        state = jax.device_put(state, replicated)
        data = jax.device_put(data, replicated)

    def evaluate(s: TrainState) -> dict[str, float]:
        metrics = {k: float(v) for k, v in eval_fn(s).items()}
        history.evals.append((int(s.step), metrics))
        return metrics

    from tqdm.auto import tqdm

    start = int(state.step)
    bar = tqdm(total=num_steps, initial=min(start, num_steps), desc=desc, disable=not progress)
    postfix: dict[str, Any] = {}
    try:
        for step in range(start + 1, num_steps + 1):
            new_state, loss = train_step(
                state,
                data,
                loss_fn=loss_fn,
                optimizer=optimizer,
                batch_size=batch_size,
                batch_sharding=batch_sharding,
                compiler_options=compiler_options,
            )
            loss_value = float(loss)
            if not np.isfinite(loss_value):
                history.diverged_at = step
                history.steps.append(step)
                history.losses.append(loss_value)
                bar.write(
                    f"umrf.training.fit: non-finite loss ({loss_value}) at step {step}; "
                    f"stopping with the parameters of step {step - 1}."
                )
                break
            state = new_state
            if step % log_every == 0 or step == num_steps:
                history.steps.append(step)
                history.losses.append(loss_value)
                postfix["loss"] = f"{loss_value:.4g}"
            if eval_fn is not None and eval_every and step % eval_every == 0 and step < num_steps:
                postfix.update({k: f"{v:.4g}" for k, v in evaluate(state).items()})
            if ckpt_dir is not None and checkpoint_every and step % checkpoint_every == 0:
                save_checkpoint(_checkpoint_path(ckpt_dir, step), state)
                _prune(ckpt_dir, keep_checkpoints)
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
    finally:
        bar.close()
    if eval_fn is not None and history.diverged_at is None:
        evaluate(state)
    if ckpt_dir is not None and history.diverged_at is None and start < num_steps:
        save_checkpoint(_checkpoint_path(ckpt_dir, int(state.step)), state)
        _prune(ckpt_dir, keep_checkpoints)
    return state, history


# --------------------------------------------------------------------------- evaluation


def mmd(x: jax.Array, y: jax.Array, *, bandwidth: float | None = None) -> jax.Array:
    r"""Unbiased squared maximum mean discrepancy with a Gaussian (RBF) kernel.

    .. math::

       \widehat{\mathrm{MMD}}^2 = \frac{1}{m(m-1)}\sum_{i\ne j} k(x_i, x_j)
         + \frac{1}{n(n-1)}\sum_{i\ne j} k(y_i, y_j) - \frac{2}{mn}\sum_{i,j} k(x_i, y_j),
       \qquad k(a, b) = \exp\!\big(-‖a-b‖² / (2h²)\big).

    Zero in expectation iff the two distributions agree. A sample-quality
    figure is only meaningful next to its baseline: the same statistic
    between two independent data samples of the same sizes.

    Args:
      x: samples ``(m, d)``.
      y: samples ``(n, d)``, ``m, n >= 2``.
      bandwidth: keyword-only kernel width ``h > 0``; default: the median
        pairwise distance of the pooled samples (median heuristic).

    Returns:
      Scalar ``MMD²`` estimate (may be slightly negative).

    References:
      Gretton et al., *A kernel two-sample test*, JMLR 13, 2012.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"`x` and `y` must be (m, d) and (n, d); got {x.shape} and {y.shape}.")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("`x` and `y` need at least 2 samples each.")
    if bandwidth is not None:
        check_positive("bandwidth", bandwidth)
    dtype = jnp.result_type(x, y, jnp.float32)
    h = jnp.asarray(-1.0 if bandwidth is None else bandwidth, dtype)
    return _mmd(x.astype(dtype), y.astype(dtype), h)


def _sqdist(a: jax.Array, b: jax.Array) -> jax.Array:
    d = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
    return jnp.maximum(d, 0.0)


@jax.jit
def _mmd(x: jax.Array, y: jax.Array, h: jax.Array) -> jax.Array:
    """Jitted body of :func:`mmd`; ``h < 0`` selects the median heuristic."""
    dxx, dyy, dxy = _sqdist(x, x), _sqdist(y, y), _sqdist(x, y)
    pooled = jnp.concatenate([x, y])
    h2 = jnp.where(h > 0, h**2, jnp.median(_sqdist(pooled, pooled)))
    m, n = x.shape[0], y.shape[0]
    kxx = jnp.exp(-dxx / (2.0 * h2))
    kyy = jnp.exp(-dyy / (2.0 * h2))
    kxy = jnp.exp(-dxy / (2.0 * h2))
    sxx = (jnp.sum(kxx) - jnp.trace(kxx)) / (m * (m - 1))
    syy = (jnp.sum(kyy) - jnp.trace(kyy)) / (n * (n - 1))
    return sxx + syy - 2.0 * jnp.mean(kxy)
