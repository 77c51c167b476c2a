"""Value-equal partial application: the basis of "rebuilding never recompiles".

umrf's compiled programs are cached on their static arguments, which include
functions built by constructors (a sampler's ``init``/``step``, ``umrf.score``).
A closure is a new object on every call, so it would defeat the cache;
:func:`bind` builds the same callable as an object that compares and hashes by
the function's identity and the bound values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Bound", "bind"]


class Bound:
    """``fn`` with bound keyword arguments, compared and hashed by value (see :func:`bind`)."""

    __slots__ = ("fn", "kwargs", "_key", "__weakref__")

    def __init__(self, fn: Callable[..., Any], **kwargs: Any) -> None:
        self.fn = fn
        self.kwargs = kwargs
        self._key = (fn, tuple(sorted(kwargs.items())))

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args, **self.kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bound) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{getattr(self.fn, '__name__', self.fn)}({kw})"


def bind(fn: Callable[..., Any], **kwargs: Any) -> Bound:
    """Bind keyword arguments to ``fn``; the result compares and hashes by value.

    ``bind(f, a=1)(x, y) == f(x, y, a=1)``, and ``bind(f, a=1) == bind(f, a=1)``
    whenever the bound values compare equal (functions compare by identity,
    floats and tuples by value, a hashable plan object by its own ``__eq__``).
    Build a sampler's ``init`` and ``step`` with it so that rebuilding the
    sampler from equal inputs does not recompile (DESIGN.md §3). A bound
    value that is a tracer (an algorithm built inside ``jit``) makes the
    result unhashable, and the driver then runs it without a cache.

    Args:
      fn: the function (compared by identity).
      **kwargs: keyword arguments to bind (hashable values).

    Returns:
      A callable :class:`Bound`.

    Examples:
      >>> from umrf.samplers import bind
      >>> def f(x, *, scale):
      ...     return scale * x
      >>> bind(f, scale=2.0)(3.0), bind(f, scale=2.0) == bind(f, scale=2.0)
      (6.0, True)
    """
    if not callable(fn):
        raise TypeError(f"`fn` must be callable; got {type(fn).__name__}.")
    return Bound(fn, **kwargs)
