"""Compile an elimination plan into a few ``lax.scan`` loops over one flat memory.

Unrolling variable elimination step by step gives one XLA kernel (or more)
per step, and XLA's compile time then grows (super-linearly) with the number
of variables. Instead every table lives in one flat log-space buffer ``mem``
and each step is the same small program. The step's largest input ("big",
usually the running message) is read once per union entry; the other inputs
("small") only mention the variables ``m`` they share and ``x_v``, so their sum
is a small ``(M, K)`` table broadcast over the rows ``h``:

    S[m, c]      = Σ_i mem[Ms_i[m] + Vs_i[c]]                      (small inputs)
    acc[h, m, c] = mem[Hb[h] + Mb[m] + Vb[c]] + S[m, c] + pad     (log-space product)
    out[h, m]    = logsumexp_c acc[h, m, c]                        (sum x_v out; or max)
    mem[o : o + |out|] = out

where ``m`` indexes the configurations of the small inputs' variables (other
than ``v``), ``h`` those of the big input's remaining variables, ``c`` indexes
``x_v``, and ``Hb, Mb, Vb, Ms_i, Vs_i`` are per-step index vectors built from
the tables' strides (index data ``O(H + M)`` per step, not ``O(H·M)``). Steps are
grouped into consecutive segments padded to a common shape (chosen by dynamic
programming to trade padding work against the number of loops); padded
entries carry ``−inf`` so they never contribute. Compile time is then a few
loop bodies, whatever the model size, and the same program serves
log-sum-exp (partition function, marginals by autodiff) and max (MAP, with
the per-step argmax tables kept for backtracking).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from umrf.inference._elimination import EliminationPlan, build_plan

# Work (entries) charged per extra segment: the price of one more loop to compile.
SEGMENT_COST = 2**20


class Segment(NamedTuple):
    """Index data of consecutive steps padded to one shape ``(H, M, K)`` (``I`` small inputs)."""

    hb: np.ndarray  # (L, H) int32: big input, row offsets (includes the table offset)
    mb: np.ndarray  # (L, M) int32: big input, middle offsets
    vb: np.ndarray  # (L, K) int32: big input, offsets of x_v
    ms: np.ndarray  # (L, I, M) int32: small inputs, middle offsets (include table offsets)
    vs: np.ndarray  # (L, I, K) int32: small inputs, offsets of x_v
    pen_h: np.ndarray  # (L, H) float32: 0 for a real row, -inf for padding
    pen_m: np.ndarray  # (L, M) float32
    pen_v: np.ndarray  # (L, K) float32
    out_off: np.ndarray  # (L,) int32, where the step's (H, M) output block is written
    variable: np.ndarray  # (L,) int32, the eliminated variable
    hi_vars: np.ndarray  # (L, RH) int32, row variables (padded with n: a dummy slot)
    hi_place: np.ndarray  # (L, RH) int32, their place values in h (0 for padding)
    mid_vars: np.ndarray  # (L, RM) int32
    mid_place: np.ndarray  # (L, RM) int32


class Program(NamedTuple):
    """A compiled elimination plan.

    Attributes:
      memory_size: entries of the flat buffer.
      factor_offsets: where factor ``k``'s flattened table starts.
      zero_cell, neg_cell: cells holding ``0`` and ``−inf``.
      segments: the scan segments, in execution order.
      result_cells: cells whose sum (plus ``constant``) is ``log Z``.
      constant: ``Σ log K_v`` over variables that appear in no factor.
      plan: the elimination plan compiled.
    """

    memory_size: int
    factor_offsets: tuple[int, ...]
    zero_cell: int
    neg_cell: int
    segments: tuple[Segment, ...]
    result_cells: tuple[int, ...]
    constant: float
    plan: EliminationPlan


def _segment(shapes: list[tuple[int, int, int, int]]) -> list[tuple[int, int]]:
    """Partition steps into consecutive ``[a, b)`` runs minimising padded work + loop count."""
    n = len(shapes)
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    window = 256
    for b in range(1, n + 1):
        mh = mm = mk = mi = 0
        for a in range(b - 1, max(-1, b - 1 - window), -1):
            h, m, k, i = shapes[a]
            mh, mm, mk, mi = max(mh, h), max(mm, m), max(mk, k), max(mi, i)
            cost = best[a] + (b - a) * mm * mk * (mh + mi) + SEGMENT_COST
            if cost < best[b]:
                best[b], cut[b] = cost, a
    out = []
    b = n
    while b > 0:
        out.append((cut[b], b))
        b = cut[b]
    return out[::-1]


def _axis_index(
    axes: tuple[int, ...], cards: tuple[int, ...], strides: dict[int, int], size: int
) -> np.ndarray:
    """Flat offsets of every configuration of ``axes`` (C order) under ``strides``."""
    idx = np.zeros(size, np.int64)
    if not axes:
        return idx
    coords = np.unravel_index(np.arange(size), tuple(cards[u] for u in axes))
    for u, c in zip(axes, coords, strict=True):
        idx += c * strides.get(u, 0)
    return idx


@functools.lru_cache(maxsize=256)
def build_program(
    cardinalities: tuple[int, ...],
    scopes: tuple[tuple[int, ...], ...],
    order: tuple[int, ...] | None = None,
) -> Program:
    """Compile (and cache) the program of a structure's elimination plan."""
    cards = cardinalities
    n = len(cards)
    plan = build_plan(cards, scopes, order)
    tables: dict[int, tuple[int, dict[int, int]]] = {}
    off = 0
    factor_offsets = []
    for k, s in enumerate(scopes):
        strides, acc = {}, 1
        for u in reversed(s):
            strides[u] = acc
            acc *= cards[u]
        tables[k] = (off, strides)
        factor_offsets.append(off)
        off += acc
    zero_cell, neg_cell = off, off + 1
    off += 2

    steps = [st for st in plan.steps if st.inputs]
    empty = [st for st in plan.steps if not st.inputs]
    size_of = {k: math.prod(cards[u] for u in sc) for k, sc in enumerate(scopes)}
    scope_of = dict(enumerate(scopes))
    shapes, layouts = [], []
    for st in steps:
        v = st.variable
        big = max(st.inputs, key=lambda t: (size_of[t], -t))
        small = [t for t in st.inputs if t != big]
        small_vars = {u for t in small for u in scope_of[t]} - {v}
        rest = st.union[:-1]
        mid = tuple(u for u in rest if u in small_vars)
        hi = tuple(u for u in rest if u not in small_vars)
        layouts.append((big, tuple(small), hi, mid))
        shapes.append(
            (
                math.prod(cards[u] for u in hi),
                math.prod(cards[u] for u in mid),
                cards[v],
                max(len(small), 1),
            )
        )
        size_of[st.output] = math.prod(cards[u] for u in rest)
        scope_of[st.output] = rest
    runs = _segment(shapes) if steps else []
    free: dict[int, list[int]] = {}
    slot_size: dict[int, int] = {}
    segments = []
    for a, b in runs:
        H = max(sh[0] for sh in shapes[a:b])
        M = max(sh[1] for sh in shapes[a:b])
        K = max(sh[2] for sh in shapes[a:b])
        I = max(sh[3] for sh in shapes[a:b])
        RH = max(len(layouts[j][2]) for j in range(a, b))
        RM = max(len(layouts[j][3]) for j in range(a, b))
        L = b - a
        hb = np.full((L, H), zero_cell, np.int64)
        mb = np.zeros((L, M), np.int64)
        vb = np.zeros((L, K), np.int64)
        ms = np.full((L, I, M), zero_cell, np.int64)
        vs = np.zeros((L, I, K), np.int64)
        pen_h = np.full((L, H), -np.inf, np.float32)
        pen_m = np.full((L, M), -np.inf, np.float32)
        pen_v = np.full((L, K), -np.inf, np.float32)
        out_off = np.zeros((L,), np.int64)
        variable = np.zeros((L,), np.int64)
        hi_vars = np.full((L, max(RH, 1)), n, np.int64)
        hi_place = np.zeros((L, max(RH, 1)), np.int64)
        mid_vars = np.full((L, max(RM, 1)), n, np.int64)
        mid_place = np.zeros((L, max(RM, 1)), np.int64)
        slot = H * M
        for j in range(a, b):
            st, t = steps[j], j - a
            v = st.variable
            big, small, hi, mid = layouts[j]
            h, m, k, _ = shapes[j]
            pen_h[t, :h] = 0.0
            pen_m[t, :m] = 0.0
            pen_v[t, :k] = 0.0
            variable[t] = v
            toff, strides = tables.pop(big)
            hb[t, :h] = toff + _axis_index(hi, cards, strides, h)
            mb[t, :m] = _axis_index(mid, cards, strides, m)
            vb[t, :k] = np.arange(k) * strides[v]
            consumed = [(big, toff)]
            for i, tid in enumerate(small):
                soff, sstrides = tables.pop(tid)
                ms[t, i, :m] = soff + _axis_index(mid, cards, sstrides, m)
                vs[t, i, :k] = np.arange(k) * sstrides[v]
                consumed.append((tid, soff))
            for tid, toff in consumed:
                if tid >= len(scopes):
                    free.setdefault(slot_size[tid], []).append(toff)
            pool = free.get(slot)
            if pool:
                o = pool.pop()
            else:
                o = off
                off += slot
            out_off[t] = o
            strides_out: dict[int, int] = {}
            acc = 1
            for u in reversed(mid):
                strides_out[u] = acc
                acc *= cards[u]
            acc = M
            for u in reversed(hi):
                strides_out[u] = acc
                acc *= cards[u]
            tables[st.output] = (o, strides_out)
            slot_size[st.output] = slot
            place = 1
            for r, u in reversed(list(enumerate(mid))):
                mid_vars[t, r], mid_place[t, r] = u, place
                place *= cards[u]
            place = 1
            for r, u in reversed(list(enumerate(hi))):
                hi_vars[t, r], hi_place[t, r] = u, place
                place *= cards[u]
        i32 = np.int32
        segments.append(
            Segment(
                hb.astype(i32),
                mb.astype(i32),
                vb.astype(i32),
                ms.astype(i32),
                vs.astype(i32),
                pen_h,
                pen_m,
                pen_v,
                out_off.astype(i32),
                variable.astype(i32),
                hi_vars.astype(i32),
                hi_place.astype(i32),
                mid_vars.astype(i32),
                mid_place.astype(i32),
            )
        )
    empty_ids = {st.output for st in empty}
    result_cells = tuple(tables[t][0] for t in plan.remaining if t not in empty_ids)
    constant = float(sum(math.log(cards[st.variable]) for st in empty))
    if off >= 2**31 - 1:
        raise ValueError(
            f"Exact inference needs a buffer of {off:,} entries, beyond int32 indexing; "
            "the model is too large for exact inference."
        )
    return Program(
        off,
        tuple(factor_offsets),
        zero_cell,
        neg_cell,
        tuple(segments),
        result_cells,
        constant,
        plan,
    )
