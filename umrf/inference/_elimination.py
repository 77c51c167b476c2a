"""Static elimination plans for exact inference on a ``DiscreteMRF``.

Variable elimination (Zhang & Poole, 1994; Dechter, 1999, "bucket
elimination"; Koller & Friedman, 2009, ch. 9) sums (or maximises) the
variables out one at a time. Eliminating ``v`` multiplies the factors that
mention ``v`` into one table over their union scope ``U`` and sums ``v`` out:

    τ(x_{U ∖ v}) = Σ_{x_v} Π_{k : v ∈ C_k} ψ_k(x_{C_k}).

The cost is dominated by the largest union table, ``Π_{u ∈ U} K_u`` entries;
``max |U| − 1`` over the order is the order's induced width, an upper bound
on the treewidth of the interaction graph. The default order is the best (by
largest table, then total work) of three candidates: the greedy weighted
min-fill heuristic (Kjærulff, 1990: eliminate next the variable whose
elimination adds the fewest fill-in edges, ties broken by the smallest union
table, then the smallest index), greedy min-degree, and the natural order
``0..n−1`` (a row-by-row sweep, which is optimal on grids).

Everything here is static Python metadata computed from the cardinalities
and scopes alone (DESIGN.md §5) and cached, so a new set of parameters for
the same structure reuses both the plan and the compiled program.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

DEFAULT_MAX_TABLE_SIZE = 2**24


class EliminationStep(NamedTuple):
    """One elimination: combine ``inputs`` on ``union`` and reduce ``variable`` away.

    Attributes:
      variable: the variable eliminated at this step.
      inputs: ids of the tables consumed (factor ``k`` has id ``k``; the
        table made by step ``t`` has id ``num_factors + t``).
      union: the union scope, ``variable`` last.
      aligns: per input, ``(permutation, broadcast_shape)`` that brings the
        input's axes into ``union`` order with size-1 axes for absent variables.
      output: id of the produced table (scope ``union[:-1]``).
    """

    variable: int
    inputs: tuple[int, ...]
    union: tuple[int, ...]
    aligns: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    output: int


class EliminationPlan(NamedTuple):
    """A static plan for exact inference by variable elimination.

    Attributes:
      order: the elimination order (every variable once).
      treewidth: the induced width of ``order`` (largest union scope minus
        one), an upper bound on the interaction graph's treewidth.
      max_table_size: entries of the largest table built (a union table).
      total_size: entries of all union tables together (a work estimate).
      steps: the steps, in order.
      remaining: ids of the scalar tables left after the last step (their sum
        is ``log Z``).
    """

    order: tuple[int, ...]
    treewidth: int
    max_table_size: int
    total_size: int
    steps: tuple[EliminationStep, ...]
    remaining: tuple[int, ...]

    def check_budget(self, max_table_size: int) -> None:
        """Raise ``ValueError`` when the largest table exceeds ``max_table_size`` entries."""
        if self.max_table_size > max_table_size:
            mib = self.max_table_size * 4 / 2**20
            raise ValueError(
                f"Exact inference would build a table of {self.max_table_size:,} entries "
                f"(~{mib:,.0f} MiB in float32; induced width {self.treewidth} of the min-fill "
                f"order), above `max_table_size`={max_table_size:,}. Pass a larger "
                "`max_table_size` if the memory is available, or use approximate inference "
                "(mean-field, loopy BP, Gibbs)."
            )


def _greedy_order(
    n: int, cards: tuple[int, ...], adj: list[set[int]], heuristic: str
) -> tuple[int, ...]:
    """Greedy elimination order ("min_fill" or "min_degree"), scores updated locally."""
    adj = [set(a) for a in adj]
    logc = [math.log(k) if k > 0 else 0.0 for k in cards]

    def score(v: int) -> tuple[float, float, int]:
        nb = list(adj[v])
        weight = logc[v] + sum(logc[u] for u in nb)
        if heuristic == "min_degree":
            return (len(nb), weight, v)
        fill = 0
        for i, a in enumerate(nb):
            adj_a = adj[a]
            for b in nb[i + 1 :]:
                if b not in adj_a:
                    fill += 1
        return (fill, weight, v)

    scores = {v: score(v) for v in range(n)}
    order = []
    while scores:
        v = min(scores, key=scores.__getitem__)
        del scores[v]
        order.append(v)
        nb = adj[v]
        for a in nb:
            adj[a].discard(v)
            adj[a] |= nb - {a}
        touched = set(nb)
        for a in nb:
            touched |= adj[a]
        for u in touched:
            if u in scores:
                scores[u] = score(u)
        adj[v] = set()
    return tuple(order)


@functools.lru_cache(maxsize=512)
def build_plan(
    cardinalities: tuple[int, ...],
    scopes: tuple[tuple[int, ...], ...],
    order: tuple[int, ...] | None = None,
) -> EliminationPlan:
    """Build (and cache) the elimination plan for a structure.

    Args:
      cardinalities: ``K_i`` per variable.
      scopes: the factors' scopes.
      order: an explicit elimination order (a permutation of ``0..n-1``);
        ``None`` tries greedy weighted min-fill, greedy min-degree and the
        natural order ``0..n-1`` and keeps the one with the smallest largest
        table (then the smallest total work).

    Returns:
      An :class:`EliminationPlan`.
    """
    n = len(cardinalities)
    if order is None:
        adj: list[set[int]] = [set() for _ in range(n)]
        for s in scopes:
            for a in s:
                adj[a].update(u for u in s if u != a)
        candidates = [
            _plan_for_order(cardinalities, scopes, _greedy_order(n, cardinalities, adj, h))
            for h in ("min_fill", "min_degree")
        ]
        candidates.append(_plan_for_order(cardinalities, scopes, tuple(range(n))))
        return min(candidates, key=lambda p: (p.max_table_size, p.total_size))
    order = tuple(int(v) for v in order)
    if sorted(order) != list(range(n)):
        raise ValueError(
            f"`order` must be a permutation of 0..{n - 1}, each variable once; got {order}."
        )
    return _plan_for_order(cardinalities, scopes, order)


def _plan_for_order(
    cardinalities: tuple[int, ...], scopes: tuple[tuple[int, ...], ...], order: tuple[int, ...]
) -> EliminationPlan:
    """The plan of one explicit elimination order."""
    n = len(cardinalities)
    scope_of: dict[int, tuple[int, ...]] = dict(enumerate(scopes))
    holders: dict[int, set[int]] = {v: set() for v in range(n)}
    for k, s in enumerate(scopes):
        for v in s:
            holders[v].add(k)
    next_id = len(scopes)
    steps = []
    width, biggest, total = 0, 1, 0
    for v in order:
        ids = sorted(holders[v], key=lambda t: (-len(scope_of[t]), t))
        others: list[int] = []
        for t in ids:
            for u in scope_of[t]:
                if u != v and u not in others:
                    others.append(u)
        union = (*others, v)
        aligns = []
        for t in ids:
            s = scope_of[t]
            perm = tuple(s.index(u) for u in union if u in s)
            shape = tuple(cardinalities[u] if u in s else 1 for u in union)
            aligns.append((perm, shape))
        size = math.prod(cardinalities[u] for u in union)
        width, biggest, total = max(width, len(union) - 1), max(biggest, size), total + size
        for t in ids:
            for u in scope_of[t]:
                holders[u].discard(t)
            del scope_of[t]
        out = next_id
        next_id += 1
        scope_of[out] = tuple(others)
        for u in others:
            holders[u].add(out)
        steps.append(EliminationStep(v, tuple(ids), union, tuple(aligns), out))
    remaining = tuple(sorted(scope_of))
    return EliminationPlan(order, width, biggest, total, tuple(steps), remaining)


def plan_for(mrf: Any, order: Sequence[int] | None = None) -> EliminationPlan:
    """The cached plan for ``mrf``'s structure (see :func:`elimination_plan`)."""
    return build_plan(
        tuple(mrf.cardinalities),
        tuple(mrf.scopes),
        None if order is None else tuple(int(v) for v in order),
    )
