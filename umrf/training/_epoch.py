"""Jitted epochs: one compiled ``lax.scan`` over all minibatches of a shuffled data set.

:func:`umrf.training.fit` takes one jitted step per Python iteration (with a
host round-trip per step, for its progress bar, checks and checkpoints).
For small models — an RBM on 8×8 digits, a 2-D energy — that round-trip
costs more than the step itself. :func:`train_epoch` runs a whole epoch as ONE
program: the data are permuted with a key split off the state, cut into
``N // batch_size`` minibatches (the last ``N mod batch_size`` examples of the
permutation sit the epoch out; a different set every epoch), and a
``lax.scan`` applies one optax update per minibatch. No Python runs per
minibatch.

:func:`contrastive_divergence_loss` builds the loss of CD-k or persistent CD
(Tieleman 2008) for any umrf sampler, in the ``loss_fn(key, params, batch,
extra)`` form of :func:`fit` and :func:`train_epoch` (``extra``: the
persistent chains); it is value-equal, so rebuilding it never recompiles.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from umrf._bind import bind
from umrf._validation import check_callable, check_positive_int
from umrf.training._state import LossFn, TrainState
from umrf.training._step import resolve_compiler_options

__all__ = ["contrastive_divergence_loss", "train_epoch"]


def _epoch_impl(
    state: TrainState,
    data: Any,
    *,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    batch_size: int,
) -> tuple[TrainState, jax.Array]:
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    num_batches = n // batch_size
    key, k_perm, k_steps = jax.random.split(state.key, 3)
    perm = jax.random.permutation(k_perm, n)[: num_batches * batch_size]
    batches = jax.tree_util.tree_map(
        lambda a: a[perm].reshape((num_batches, batch_size) + a.shape[1:]), data
    )
    grad_fn = jax.value_and_grad(loss_fn, argnums=1, has_aux=True)

    def one(carry: Any, inputs: Any) -> tuple[Any, jax.Array]:
        params, opt_state, extra, step, ok = carry
        i, batch = inputs
        (loss, new_extra), grads = grad_fn(jax.random.fold_in(k_steps, i), params, batch, extra)
        updates, new_opt = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        ok = ok & jnp.isfinite(loss)
        keep = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
            lambda a, b: jnp.where(ok, a, b), new, old
        )
        carry = (
            keep(new_params, params),
            keep(new_opt, opt_state),
            keep(new_extra, extra),
            step + ok.astype(step.dtype),
            ok,
        )
        return carry, jnp.where(ok, loss, jnp.nan)

    carry = (state.params, state.opt_state, state.extra, state.step, jnp.ones((), bool))
    (params, opt_state, extra, step, _), losses = jax.lax.scan(
        one, carry, (jnp.arange(num_batches, dtype=jnp.int32), batches)
    )
    return TrainState(step, params, opt_state, key, extra), losses


@functools.lru_cache(maxsize=8)
def _jitted_epoch(options: tuple[tuple[str, str], ...]) -> Callable[..., Any]:
    return jax.jit(
        _epoch_impl,
        static_argnames=("loss_fn", "optimizer", "batch_size"),
        compiler_options=dict(options) or None,
    )


def train_epoch(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    state: TrainState,
    data: Any,
    *,
    batch_size: int,
    compiler_options: dict[str, str] | str | None = "auto",
) -> tuple[TrainState, jax.Array]:
    """One epoch of minibatch updates as one compiled program (no Python per minibatch).

    The state's key is split into ``(next_key, permutation_key,
    step_key)``; minibatch ``i`` is rows ``perm[i·B:(i+1)·B]`` of ``data`` and
    its loss key is ``fold_in(step_key, i)``. Each minibatch applies
    ``optimizer`` to ``jax.value_and_grad(loss_fn, argnums=1,
    has_aux=True)(key, params, batch, extra)``. Compiled once per
    ``(loss_fn, optimizer, batch_size, compiler options, shapes)``; reuse the
    same ``loss_fn`` and ``optimizer`` objects (or value-equal ones, e.g. from
    :func:`contrastive_divergence_loss`) across epochs.

    A non-finite loss is never applied: that minibatch and every later one in
    the epoch are skipped (their entries of the returned losses are NaN), so
    the returned state holds the last finite parameters and ``state.step``
    counts the updates actually applied. Check ``jnp.isfinite(losses).all()``.

    Args:
      loss_fn: ``loss_fn(key, params, batch, extra) -> (loss, new_extra)``.
      optimizer: any optax ``GradientTransformation``.
      state: the :class:`~umrf.training.TrainState` (``init_train_state``).
      data: training set, a pytree of arrays with a common leading size ``N``.
      batch_size: keyword-only ``B``, ``1 <= B <= N``.
      compiler_options: keyword-only XLA options, as for
        :func:`umrf.training.train_step`.

    Returns:
      ``(new_state, losses)`` with ``losses`` of shape ``(N // B,)``.

    Raises:
      TypeError/ValueError: a bad optimizer, batch size or data.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, umrf
      >>> def loss_fn(key, p, batch, extra):
      ...     return jnp.mean((batch - p) ** 2), extra
      >>> opt = optax.sgd(0.5)
      >>> state = umrf.training.init_train_state(opt, jax.random.key(0), jnp.zeros(()))
      >>> data = jnp.full((40,), 3.0)
      >>> for _ in range(3):
      ...     state, losses = umrf.training.train_epoch(loss_fn, opt, state, data, batch_size=8)
      >>> int(state.step), losses.shape, round(float(state.params), 3)
      (15, (5,), 3.0)
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"`optimizer` must be an optax.GradientTransformation; got {optimizer!r}.")
    check_callable("loss_fn", loss_fn, "loss_fn(key, params, batch, extra) -> (loss, extra)")
    batch_size = check_positive_int("batch_size", batch_size)
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves or any(jnp.ndim(a) == 0 for a in leaves):
        raise ValueError("`data` must be an array (or pytree) with a leading example axis.")
    sizes = {jnp.shape(a)[0] for a in leaves}
    if len(sizes) != 1:
        raise ValueError(f"every leaf of `data` must have the same leading size; got {sizes}.")
    (n,) = sizes
    if batch_size > n:
        raise ValueError(f"`batch_size` ({batch_size}) exceeds the number of examples ({n}).")
    program = _jitted_epoch(resolve_compiler_options(compiler_options))
    return program(state, data, loss_fn=loss_fn, optimizer=optimizer, batch_size=batch_size)


def _cd_loss(
    key: jax.Array,
    params: Any,
    batch: Any,
    chains: Any,
    *,
    alg: Any,
    energy_fn: Callable[[Any, Any], jax.Array],
    num_steps: int,
    persistent: bool,
    alpha: float,
) -> tuple[jax.Array, Any]:
    from umrf.losses import contrastive_divergence
    from umrf.samplers import cd_negatives, pcd_negatives

    if persistent:
        negatives, _ = pcd_negatives(alg, key, params, chains, num_steps=num_steps)
        chains = negatives
    else:
        negatives, _ = cd_negatives(alg, key, params, batch, num_steps=num_steps)
    loss = contrastive_divergence(energy_fn, params, batch, negatives, alpha=alpha)
    return loss, chains


def contrastive_divergence_loss(
    alg: Any,
    energy_fn: Callable[[Any, Any], jax.Array],
    *,
    num_steps: int = 1,
    persistent: bool = False,
    alpha: float = 0.0,
) -> LossFn:
    """The CD-k or persistent-CD loss ``loss_fn(key, params, batch, chains)`` of any sampler.

    CD-k (Hinton 2002): the negatives are ``num_steps`` steps of ``alg``
    from the data batch (``extra`` is passed through untouched). PCD
    (Tieleman 2008, ``persistent=True``): they are ``num_steps`` steps
    continuing the persistent chains ``extra``, which the loss returns
    updated. Either way the loss is
    :func:`umrf.losses.contrastive_divergence` of ``energy_fn``, whose
    gradient is the maximum-likelihood gradient estimate. For an RBM use
    ``alg = umrf.samplers.gibbs(rbm)`` and the free energy
    ``umrf.models.relaxation(rbm).energy_fn``; its parameter gradient then
    uses the exact conditional hidden expectations, as scikit-learn's
    ``BernoulliRBM`` does.

    Args:
      alg: a ``SamplingAlgorithm`` targeting ``exp(-energy_fn)``.
      energy_fn: ``energy_fn(params, x) -> scalar``.
      num_steps: keyword-only ``k >= 1``.
      persistent: keyword-only; PCD instead of CD-k.
      alpha: keyword-only energy-magnitude penalty (see ``contrastive_divergence``).

    Returns:
      A value-equal ``loss_fn`` for :func:`train_epoch` / :func:`fit`.

    Examples:
      >>> import jax, umrf
      >>> rbm = umrf.models.BernoulliRBM.random(jax.random.key(0), 64, 16)
      >>> f = umrf.models.relaxation(rbm).energy_fn
      >>> loss = umrf.training.contrastive_divergence_loss(umrf.samplers.gibbs(rbm), f,
      ...                                                  persistent=True)
      >>> loss == umrf.training.contrastive_divergence_loss(umrf.samplers.gibbs(rbm), f,
      ...                                                   persistent=True)
      True
    """
    check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    num_steps = check_positive_int("num_steps", num_steps)
    if not isinstance(persistent, bool):
        raise TypeError(f"`persistent` must be a bool; got {type(persistent).__name__}.")
    if not (hasattr(alg, "init") and hasattr(alg, "step")):
        raise TypeError(f"`alg` must be a SamplingAlgorithm; got {type(alg).__name__}.")
    return bind(
        _cd_loss,
        alg=alg,
        energy_fn=energy_fn,
        num_steps=num_steps,
        persistent=persistent,
        alpha=float(alpha),
    )
