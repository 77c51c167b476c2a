"""Shared checks for bad input, run before tracing (DESIGN.md §7).

Every check raises ``ValueError``/``TypeError`` naming the argument and the
fix. Checks on array *values* are skipped when the value is a tracer (inside
``jit``), so validated functions remain jit-able.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """Return True when every leaf of ``x`` holds a concrete (non-traced) value."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Raise ``ValueError`` unless a concrete ``value`` is finite and > 0 (or >= 0).

    Tracers pass unchecked, so the caller stays jit-able.
    """
    if not is_concrete(value):
        return
    arr = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(arr) | ((arr < 0) if allow_zero else (arr <= 0))
    if np.any(bad):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"`{name}` must be finite and {bound}; got {value!r}. Pass a {bound} value."
        )


def check_finite(name: str, x: Any) -> None:
    """Raise ``ValueError`` if a concrete pytree ``x`` contains NaN or infinity.

    A ``jax.Array`` that spans several processes (multi-host) cannot be read on
    one host; it is checked with one global device-side reduction instead, so
    every process computes the same verdict and all of them raise together.
    """
    if not is_concrete(x):
        return
    for leaf in jax.tree_util.tree_leaves(x):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if not jnp.issubdtype(leaf.dtype, jnp.inexact):
                continue
            ok = bool(_all_finite_global(leaf))
        else:
            arr = np.asarray(leaf)
            ok = not np.issubdtype(arr.dtype, np.inexact) or bool(np.all(np.isfinite(arr)))
        if not ok:
            raise ValueError(
                f"`{name}` contains NaN or infinite values; pass finite values "
                "(e.g. check the initial positions or the data pipeline)."
            )


@jax.jit
def _all_finite_global(x: jax.Array) -> jax.Array:
    return jnp.all(jnp.isfinite(x))


def check_probability(name: str, value: Any, *, upper_inclusive: bool = False) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (or ``<= 1``) for a concrete number."""
    if not is_concrete(value):
        return
    v = float(value)
    ok = 0.0 <= v <= 1.0 if upper_inclusive else 0.0 <= v < 1.0
    if not ok or math.isnan(v):
        interval = "[0, 1]" if upper_inclusive else "[0, 1)"
        raise ValueError(f"`{name}` must lie in {interval}; got {value!r}.")


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """Return ``int(value)`` after checking it is a positive (or non-negative) integer."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be a Python int; got {type(value).__name__}.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"`{name}` must be {bound}; got {value}.")
    return int(value)


def static_positive_scalar(name: str, value: Any) -> Any:
    """Validate a concrete scalar ``value > 0`` and return it as a Python float.

    A traced value (an algorithm built inside ``jit``) is returned unchanged.
    """
    if isinstance(value, jax.core.Tracer):
        return value
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar; got an array of shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"`{name}` must be a real number; got {value!r}.")
    check_positive(name, value)
    return float(arr)


def check_callable(name: str, fn: Any, signature: str) -> None:
    """Raise ``TypeError`` unless ``fn`` is callable; ``signature`` shows the expected call."""
    if not callable(fn):
        raise TypeError(f"`{name}` must be a callable `{signature}`; got {type(fn).__name__}.")


def check_key(key: Any, name: str = "key") -> None:
    """Raise unless ``key`` is one PRNG key (``jax.random.key(s)`` or legacy ``PRNGKey(s)``)."""
    if isinstance(key, jax.core.Tracer) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"`{name}` must be a single PRNG key; got shape {key.shape}.")
        return
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"`{name}` must be a single PRNG key; got a key array of shape {key.shape}."
            )
        return
    arr_dtype = getattr(key, "dtype", None)
    if arr_dtype != np.uint32 or np.ndim(key) != 1 or np.shape(key)[0] < 2:
        raise TypeError(
            f"`{name}` must be a PRNG key from jax.random.key(seed) (or "
            f"jax.random.PRNGKey(seed)); got {type(key).__name__} with dtype {arr_dtype}."
        )


def check_discrete_position(name: str, x: Any, cards: tuple[int, ...]) -> jax.Array:
    """Validate a configuration of shape ``(n,)`` with ``0 <= x_i < K_i``; return it as int32.

    Concrete values are range-checked here; a traced ``x`` cannot be, and
    callers map out-of-range traced states to a non-finite result instead.
    """
    x = x if isinstance(x, jax.core.Tracer) else jnp.asarray(x)
    if x.shape != (len(cards),):
        raise ValueError(
            f"`{name}` must have shape ({len(cards)},), one state per variable; got {x.shape}."
        )
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"`{name}` must be an int array of states; got dtype {x.dtype}.")
    if is_concrete(x):
        arr = np.asarray(x)
        bad = np.nonzero((arr < 0) | (arr >= np.asarray(cards)))[0]
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"`{name}[{i}]` = {int(arr[i])} is outside the states 0..{cards[i] - 1} of "
                f"variable {i}."
            )
    return x.astype(jnp.int32)


def check_scalar_energy(energy_fn: Callable[..., Any], params: Any, value: Any) -> None:
    """Raise ``ValueError`` unless ``energy_fn(params, value)`` is a scalar (shape-only)."""
    shape = jax.eval_shape(energy_fn, params, value).shape
    if shape != ():
        raise ValueError(
            "`energy_fn(params, x)` must return a scalar for ONE configuration x; got shape "
            f"{shape}. Batch with jax.vmap (or umrf.sample_chains), never inside the energy."
        )


def check_score_shape(score: Any, value: Any, name: str = "score_fn") -> None:
    """Raise ``ValueError`` unless ``score`` has the structure and shapes of ``value``."""
    s_leaves, s_def = jax.tree_util.tree_flatten(score)
    v_leaves, v_def = jax.tree_util.tree_flatten(value)
    if s_def != v_def or any(
        jnp.shape(a) != jnp.shape(b) for a, b in zip(s_leaves, v_leaves, strict=True)
    ):
        got = [jnp.shape(a) for a in s_leaves]
        want = [jnp.shape(b) for b in v_leaves]
        raise ValueError(
            f"`{name}` must return the score with the structure and shape of ONE "
            f"configuration x; got shapes {got} for x of shapes {want}."
        )


def check_num_categories(num_categories: Any) -> int | tuple[int, ...] | None:
    """Validate a ``num_categories`` argument and return it normalised (int, tuple or None)."""
    if num_categories is None:
        return None
    if isinstance(num_categories, bool | str):
        raise TypeError("`num_categories` must be None, an int >= 2 or a tuple of cardinalities.")
    if isinstance(num_categories, int | np.integer):
        k = int(num_categories)
        if k < 2:
            raise ValueError(f"`num_categories` must be >= 2; got {k}.")
        return k
    if isinstance(num_categories, Sequence) and len(num_categories) > 0:
        cards = []
        for k in num_categories:
            if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
                raise ValueError(
                    f"`num_categories` entries must be ints >= 1; got {list(num_categories)!r}."
                )
            cards.append(int(k))
        return tuple(cards)
    raise TypeError(
        "`num_categories` must be None (binary states), an int K >= 2 (one-hot) or a tuple of "
        f"per-variable cardinalities; got {num_categories!r}."
    )
