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
  replay buffer), pickle-free, crash-safe and verified on load (see
  :func:`umrf.training.save_checkpoint`); since every random number of a
  step is derived from the saved key, an interrupted run that resumes from
  its last checkpoint reproduces the uninterrupted run bit for bit;
* data parallelism with a ``jax.sharding.Mesh``: the minibatch is sharded
  along the mesh axis, parameters and optimiser state are replicated, and
  XLA inserts the gradient all-reduce. The mesh may span several processes
  (``jax.distributed``): call ``fit`` in every process with the same
  arguments (SPMD), and give all of them the same ``checkpoint_dir`` on a
  shared file system.

A non-finite loss stops the run at that step: the state *before* the bad
update is returned and ``history.diverged_at`` names the step (the loss is
never replaced).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from umrf._validation import check_finite, check_positive_int
from umrf.sharding import put_global
from umrf.training._checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from umrf.training._state import LossFn, TrainState, init_train_state
from umrf.training._step import resolve_compiler_options, train_step

__all__ = ["History", "fit"]


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


def fit(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    key: jax.Array,
    params: Any,
    data: Any,
    *,
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
    ``jax.value_and_grad(loss_fn, argnums=1, has_aux=True)(loss_key, params, batch, extra)``.

    Example ``loss_fn`` for denoising score matching (no extra state)::

        def loss_fn(key, params, batch, extra):
            loss = umrf.losses.denoising_score_matching(score_fn, key, params, batch, sigma=0.1)
            return loss, extra

    and for persistent CD (the chains are the extra state)::

        def loss_fn(key, params, batch, chains):
            chains, _ = umrf.samplers.pcd_negatives(alg, key, params, chains, num_steps=20)
            return umrf.losses.contrastive_divergence(energy_fn, params, batch, chains), chains

    Args:
      loss_fn: ``loss_fn(key, params, batch, extra) -> (loss, new_extra)``;
        reuse the same function object to reuse the compiled step.
      optimizer: optax ``GradientTransformation``; reuse the same object (with
        the same ``loss_fn``) to reuse the compiled step.
      key: PRNG key of the run.
      params: initial parameters (ignored when resuming from a checkpoint).
      data: training set; pytree with a common leading axis.
      num_steps: keyword-only total number of updates (a resumed run continues
        up to it). All further arguments are keyword-only.
      batch_size: minibatch size (a multiple of the mesh axis size with ``mesh``).
      extra: initial extra state carried by ``loss_fn``.
      eval_fn: optional ``eval_fn(state) -> dict`` of scalars, called every
        ``eval_every`` steps and at the end (it must not change the state).
      eval_every: evaluation period in steps (0: only at the end).
      checkpoint_dir: directory for checkpoints ``ckpt_<step>`` (see
        :func:`umrf.training.save_checkpoint`).
      checkpoint_every: checkpoint period (0: only at the end).
      keep_checkpoints: how many recent checkpoints to keep.
      resume: continue from the latest checkpoint in ``checkpoint_dir``;
        with ``resume=False`` that directory must hold no checkpoint (saved
        work is never overwritten).
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
        not divide over the mesh, a checkpoint that does not fit, or
        ``resume=False`` with checkpoints in ``checkpoint_dir``.
      umrf.training.CheckpointError: the latest checkpoint is damaged (the
        message names the file).
    """
    num_steps = check_positive_int("num_steps", num_steps, allow_zero=True)
    batch_size = check_positive_int("batch_size", batch_size)
    eval_every = check_positive_int("eval_every", eval_every, allow_zero=True)
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every, allow_zero=True)
    keep_checkpoints = check_positive_int("keep_checkpoints", keep_checkpoints)
    log_every = check_positive_int("log_every", log_every)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"`optimizer` must be an optax.GradientTransformation; got {optimizer!r}.")
    resolve_compiler_options(compiler_options)  # a bad value fails here, before any work
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

    state = init_train_state(optimizer, key, params, extra=extra)
    history = History()
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    last = latest_checkpoint(ckpt_dir) if ckpt_dir is not None else None
    if last is not None and not resume:
        raise ValueError(
            f"`checkpoint_dir` {ckpt_dir} already holds checkpoints (latest {last.name}); pass "
            "resume=True to continue that run, or an empty directory to start a new one."
        )
    if last is not None:
        state = load_checkpoint(last, state)
        history.resumed_from = int(state.step)
    if mesh is not None:  # multi-host safe: every process passes the same state and data
        replicated = NamedSharding(mesh, PartitionSpec())
        state = put_global(state, replicated)
        data = put_global(data, replicated)
    saved_at = history.resumed_from

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
                loss_fn,
                optimizer,
                state,
                data,
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
                save_checkpoint(checkpoint_path(ckpt_dir, step), state)
                prune_checkpoints(ckpt_dir, keep_checkpoints)
                saved_at = step
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
    finally:
        bar.close()
    if eval_fn is not None and history.diverged_at is None:
        evaluate(state)
    final_step = int(state.step)
    unsaved = final_step > start and saved_at != final_step
    if ckpt_dir is not None and history.diverged_at is None and unsaved:
        save_checkpoint(checkpoint_path(ckpt_dir, final_step), state)
        prune_checkpoints(ckpt_dir, keep_checkpoints)
    return state, history
