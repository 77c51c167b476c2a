"""Conditional independence read off the exact joint of a small ``DiscreteMRF``.

``X_A ⟂ X_B | X_C`` holds iff ``p(a, b | c) = p(a | c) p(b | c)`` for every
``c`` with ``p(c) > 0``. With the exact joint a user can watch the
Hammersley–Clifford theorem hold: separation in the graph implies
independence for every positive distribution that factorises on it
(Hammersley & Clifford, 1971; Koller & Friedman, 2009, Thm. 4.1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import jax
import jax.numpy as jnp

from umrf.inference._enumerate import DEFAULT_MAX_JOINT_SIZE, enumerate_joint
from umrf.models import DiscreteMRF


def _as_vars(name: str, vs: int | Iterable[int], n: int) -> tuple[int, ...]:
    if isinstance(vs, int):
        vs = (vs,)
    out = tuple(int(v) for v in vs)
    bad = [v for v in out if not 0 <= v < n]
    if bad:
        raise ValueError(f"`{name}` names variables {bad} outside 0..{n - 1}.")
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}` repeats a variable: {out}.")
    return tuple(sorted(out))


def independence_gap(
    mrf: DiscreteMRF,
    A: int | Iterable[int],
    B: int | Iterable[int],
    C: int | Iterable[int] = (),
    *,
    max_table_size: int = DEFAULT_MAX_JOINT_SIZE,
) -> jax.Array:
    """``max_{a,b,c: p(c)>0} |p(a, b | c) − p(a | c) p(b | c)|`` from the exact joint.

    Zero (up to rounding) iff ``X_A ⟂ X_B | X_C``. Jit-able and differentiable.

    Args:
      mrf: a small model (the joint is enumerated).
      A: a non-empty set of variables (an int is one variable).
      B: a non-empty set of variables, disjoint from ``A``.
      C: the conditioning variables (possibly empty), disjoint from ``A`` and ``B``.
      max_table_size: refuse joints with more configurations than this.

    Raises:
      ValueError: unknown, repeated or overlapping variables, or an empty ``A``/``B``.
    """
    if not isinstance(mrf, DiscreteMRF):
        raise TypeError(f"`mrf` must be a umrf.models.DiscreteMRF; got {type(mrf).__name__}.")
    n = mrf.num_variables
    a, b, c = _as_vars("A", A, n), _as_vars("B", B, n), _as_vars("C", C, n)
    if not a or not b:
        raise ValueError("`A` and `B` must each name at least one variable.")
    for (n1, s1), (n2, s2) in ((("A", a), ("B", b)), (("A", a), ("C", c)), (("B", b), ("C", c))):
        if set(s1) & set(s2):
            raise ValueError(f"`{n1}` and `{n2}` overlap in {sorted(set(s1) & set(s2))}.")
    p = enumerate_joint(mrf, max_table_size=max_table_size)
    rest = tuple(v for v in range(n) if v not in a + b + c)
    p = jnp.sum(p, axis=rest) if rest else p
    kept = tuple(v for v in range(n) if v not in rest)
    p = jnp.transpose(p, tuple(kept.index(v) for v in a + b + c))
    cards = mrf.cardinalities
    sa, sb = math.prod(cards[v] for v in a), math.prod(cards[v] for v in b)
    sc = math.prod(cards[v] for v in c)
    p = jnp.reshape(p, (sa, sb, sc))
    pc = jnp.sum(p, axis=(0, 1), keepdims=True)
    live = pc > 0
    pc_safe = jnp.where(live, pc, jnp.ones_like(pc))
    cond = p / pc_safe
    pa = jnp.sum(cond, axis=1, keepdims=True)
    pb = jnp.sum(cond, axis=0, keepdims=True)
    gap = jnp.where(live, jnp.abs(cond - pa * pb), jnp.zeros_like(cond))
    return jnp.max(gap)


def is_independent(
    mrf: DiscreteMRF,
    A: int | Iterable[int],
    B: int | Iterable[int],
    C: int | Iterable[int] = (),
    *,
    atol: float = 1e-5,
    max_table_size: int = DEFAULT_MAX_JOINT_SIZE,
) -> bool:
    """Whether ``X_A ⟂ X_B | X_C`` holds numerically in ``mrf``'s exact joint.

    Returns ``independence_gap(mrf, A, B, C) <= atol`` (conditional
    probabilities, so ``atol`` is on the probability scale). Not jit-able (it
    returns a Python bool); use :func:`independence_gap` inside ``jit``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from umrf.models import DiscreteMRF, Factor
      >>> t = jnp.array([[1.0, -1.0], [-1.0, 1.0]])
      >>> chain = DiscreteMRF([2, 2, 2], [Factor((0, 1), t), Factor((1, 2), t)])
      >>> is_independent(chain, 0, 2, 1), is_independent(chain, 0, 2)
      (True, False)
    """
    if not atol >= 0:
        raise ValueError(f"`atol` must be >= 0; got {atol!r}.")
    return bool(independence_gap(mrf, A, B, C, max_table_size=max_table_size) <= atol)
