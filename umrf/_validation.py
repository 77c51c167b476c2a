"""Shared checks for bad input, run before tracing (DESIGN.md §7).

Every check raises ``ValueError``/``TypeError`` naming the argument and the
fix. Checks on array *values* are skipped when the value is a tracer (inside
``jit``), so validated functions remain jit-able.
"""

from __future__ import annotations

import math
from typing import Any

import jax
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
    """Raise ``ValueError`` if a concrete pytree ``x`` contains NaN or infinity."""
    if not is_concrete(x):
        return
    for leaf in jax.tree_util.tree_leaves(x):
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
            raise ValueError(
                f"`{name}` contains NaN or infinite values; pass finite values "
                "(e.g. check the initial positions or the data pipeline)."
            )


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
