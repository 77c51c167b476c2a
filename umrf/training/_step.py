"""One jitted optax update, and the CPU compiler options it is compiled with."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding

from umrf.training._state import LossFn, TrainState

__all__ = ["CPU_COMPILER_OPTIONS", "train_step"]


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
    (loss, extra), grads = jax.value_and_grad(loss_fn, argnums=1, has_aux=True)(
        k_loss, state.params, batch, state.extra
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


def resolve_compiler_options(compiler_options: Any) -> tuple[tuple[str, str], ...]:
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
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    state: TrainState,
    data: Any,
    *,
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
      loss_fn: ``loss_fn(key, params, batch, extra) -> (loss, new_extra)``.
      optimizer: an optax ``GradientTransformation``.
      state: current :class:`TrainState`.
      data: training set, a pytree whose leaves have the same leading size.
      batch_size: keyword-only minibatch size.
      batch_sharding: optional sharding of the minibatch (data parallelism).
      compiler_options: XLA options for compiling the step. ``"auto"`` (default)
        uses :data:`CPU_COMPILER_OPTIONS` on the CPU backend (XLA's own dot
        kernels instead of the YNNPACK fusion, faster for the small matrices of
        EBM training; see the README's CPU performance note) and nothing
        elsewhere; ``None`` keeps XLA's defaults; a dict is passed as is.

    Returns:
      ``(new_state, loss)``.
    """
    return _jitted_step(resolve_compiler_options(compiler_options))(
        state,
        data,
        loss_fn=loss_fn,
        optimizer=optimizer,
        batch_size=batch_size,
        batch_sharding=batch_sharding,
    )
