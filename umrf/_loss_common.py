"""Shared pieces of umrf's losses: input checks and non-finite reporting.

Every loss is a pure scalar batch mean (DESIGN.md §4). A non-finite loss is
never replaced: it is returned as NaN/inf, and with ``return_info=True`` the
loss returns ``(loss, info)`` where ``info.is_finite`` flags it, so training
code can use ``jax.value_and_grad(..., has_aux=True)`` and stop or skip.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from umrf._validation import check_finite


class LossInfo(NamedTuple):
    """Diagnostics returned next to a loss when ``return_info=True``.

    Attributes:
      is_finite: scalar bool, ``True`` iff the returned loss is finite.
      num_nonfinite: scalar int, how many per-example terms were NaN or ±inf
        (the loss is their mean, so any such term makes it non-finite).
    """

    is_finite: jax.Array
    num_nonfinite: jax.Array


def batch_size(name: str, x: Any) -> int:
    """Return the common leading (batch) size of every leaf of ``x``.

    Raises:
      ValueError: a leaf without a leading axis, an empty batch, or leaves
        whose leading sizes differ.
    """
    leaves = jax.tree_util.tree_leaves(x)
    if not leaves:
        raise ValueError(f"`{name}` is empty; pass an array with a leading batch axis.")
    sizes = set()
    for leaf in leaves:
        shape = jnp.shape(leaf)
        if len(shape) == 0:
            raise ValueError(
                f"`{name}` must have a leading batch axis (shape (batch, ...)); got a scalar. "
                "For one configuration use x[None]."
            )
        sizes.add(shape[0])
    if len(sizes) != 1:
        raise ValueError(f"every leaf of `{name}` must share its leading batch size; got {sizes}.")
    (n,) = sizes
    if n == 0:
        raise ValueError(
            f"`{name}` has an empty batch (leading size 0); pass at least one example."
        )
    return int(n)


def check_float_batch(name: str, x: Any) -> int:
    """Check a batch of continuous configurations (floating dtype, finite) and return its size."""
    n = batch_size(name, x)
    for leaf in jax.tree_util.tree_leaves(x):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(
                f"`{name}` must be floating point (score-based losses differentiate in x); "
                f"got dtype {jnp.result_type(leaf)}. Cast with x.astype(jnp.float32)."
            )
    check_finite(name, x)
    return n


def finalize(per_example: jax.Array, return_info: bool) -> Any:
    """Average per-example terms; attach a :class:`LossInfo` when asked.

    The mean is taken as is, so a single NaN or inf term makes the loss
    non-finite: it is reported, never masked.
    """
    loss = jnp.mean(per_example)
    if not return_info:
        return loss
    finite = jnp.isfinite(per_example)
    info = LossInfo(
        is_finite=jnp.isfinite(loss),
        num_nonfinite=jnp.sum(~finite).astype(jnp.int32),
    )
    return loss, info
