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
    """Index data of consecutive steps padded to one shape ``(Ho, M, K, Hi)``.

    The big input is read as ``Ho·M·K`` contiguous rows of ``Hi`` entries (its
    innermost variables); ``I`` small inputs are read on ``(M, K)``.
    """

    hb: np.ndarray  # (L, Ho) int32: big input, outer-row offsets (include the table offset)
    mb: np.ndarray  # (L, M) int32: big input, middle offsets
    vb: np.ndarray  # (L, K) int32: big input, offsets of x_v
    ms: np.ndarray  # (L, I, M) int32: small inputs, middle offsets (include table offsets)
    vs: np.ndarray  # (L, I, K) int32: small inputs, offsets of x_v
    pen_h: np.ndarray  # (L, Ho) float32: 0 for a real row, -inf for padding
    pen_m: np.ndarray  # (L, M) float32
    pen_v: np.ndarray  # (L, K) float32
    pen_i: np.ndarray  # (L, Hi) float32
    out_off: np.ndarray  # (L,) int32, where the step's (Ho, M, Hi) output block is written
    variable: np.ndarray  # (L,) int32, the eliminated variable
    ho_vars: np.ndarray  # (L, R) int32, outer-row variables (padded with n: a dummy slot)
    ho_place: np.ndarray  # (L, R) int32, their place values (0 for padding)
    mid_vars: np.ndarray  # (L, R) int32
    mid_place: np.ndarray  # (L, R) int32
    in_vars: np.ndarray  # (L, R) int32, inner (contiguous) variables
    in_place: np.ndarray  # (L, R) int32


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


def _segment(shapes: list[tuple[int, int, int, int, int]]) -> list[tuple[int, int]]:
    """Partition steps into consecutive ``[a, b)`` runs minimising padded work + loop count."""
    n = len(shapes)
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    window = 256
    for b in range(1, n + 1):
        mh = mm = mk = mn = mi = 0
        for a in range(b - 1, max(-1, b - 1 - window), -1):
            h, m, k, inner, i = shapes[a]
            mh, mm, mk, mn, mi = max(mh, h), max(mm, m), max(mk, k), max(mn, inner), max(mi, i)
            cost = best[a] + (b - a) * mm * mk * (mh * mn + mi) + SEGMENT_COST
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
    runs: list[tuple[int, int]] = []
    free: dict[int, list[int]] = {}
    slot_size: dict[int, int] = {}
    segments = []
    # Layouts depend on where the producer wrote its output, so steps are laid out
    # in order: first the shapes of every step (for segmentation) need the strides,
    # which need the segments' padded sizes. We therefore lay out in two passes:
    # pass 1 with unpadded strides decides the variable groups, pass 2 pads.
    groups = []
    for st in steps:
        v = st.variable
        big = max(st.inputs, key=lambda t: (size_of[t], -t))
        small = tuple(t for t in st.inputs if t != big)
        small_vars = {u for t in small for u in scope_of[t]} - {v}
        rest = st.union[:-1]
        mid = tuple(u for u in rest if u in small_vars)
        hi = tuple(u for u in rest if u not in small_vars)
        groups.append((big, small, hi, mid))
        size_of[st.output] = math.prod(cards[u] for u in rest)
        scope_of[st.output] = rest

    def split_hi(hi: tuple[int, ...], strides: dict[int, int]) -> tuple[tuple, tuple]:
        """Split ``hi`` into (outer, inner): inner = the big table's innermost contiguous run."""
        run, expect = [], 1
        for u in sorted(strides, key=lambda w: (strides[w], -cards[w])):
            if strides[u] != expect or u not in hi:
                break
            run.append(u)
            expect *= cards[u]
        inner = tuple(reversed(run))
        return tuple(u for u in hi if u not in inner), inner

    # pass 1: unpadded layouts -> per-step shapes -> segments
    shapes = []
    lay: dict[int, dict[int, int]] = {}
    for k, sc in enumerate(scopes):
        st_, acc = {}, 1
        for u in reversed(sc):
            st_[u] = acc
            acc *= cards[u]
        lay[k] = st_
    splits = []
    for st, (big, _small, hi, mid) in zip(steps, groups, strict=True):
        ho, hin = split_hi(hi, lay[big])
        splits.append((ho, hin))
        Ho = math.prod(cards[u] for u in ho)
        M = math.prod(cards[u] for u in mid)
        Hi = math.prod(cards[u] for u in hin)
        shapes.append((Ho, M, cards[st.variable], Hi, max(len(_small), 1)))
        # only the inner block stays contiguous once segments pad the output
        inner_strides, acc = {}, 1
        for u in reversed(hin):
            inner_strides[u] = acc
            acc *= cards[u]
        lay[st.output] = inner_strides
    runs = _segment(shapes) if steps else []

    # pass 2: padded layouts, memory offsets and index data
    tail = 0
    for a, b in runs:
        Ho = max(sh[0] for sh in shapes[a:b])
        M = max(sh[1] for sh in shapes[a:b])
        K = max(sh[2] for sh in shapes[a:b])
        Hi = max(sh[3] for sh in shapes[a:b])
        I = max(sh[4] for sh in shapes[a:b])
        tail = max(tail, Hi)
        L = b - a
        R = max(1, max(len(steps[j].union) - 1 for j in range(a, b)))
        hob = np.full((L, Ho), zero_cell, np.int64)
        mb = np.zeros((L, M), np.int64)
        vb = np.zeros((L, K), np.int64)
        ms = np.full((L, I, M), zero_cell, np.int64)
        vs = np.zeros((L, I, K), np.int64)
        pen_h = np.full((L, Ho), -np.inf, np.float32)
        pen_m = np.full((L, M), -np.inf, np.float32)
        pen_v = np.full((L, K), -np.inf, np.float32)
        pen_i = np.full((L, Hi), -np.inf, np.float32)
        out_off = np.zeros((L,), np.int64)
        variable = np.zeros((L,), np.int64)
        ho_vars = np.full((L, R), n, np.int64)
        ho_place = np.zeros((L, R), np.int64)
        mid_vars = np.full((L, R), n, np.int64)
        mid_place = np.zeros((L, R), np.int64)
        in_vars = np.full((L, R), n, np.int64)
        in_place = np.zeros((L, R), np.int64)
        slot = Ho * M * Hi
        for j in range(a, b):
            st, t = steps[j], j - a
            v = st.variable
            big, small, hi, mid = groups[j]
            toff, strides = tables.pop(big)
            ho, hin = splits[j]
            h, m, k = (math.prod(cards[u] for u in g) for g in (ho, mid, (v,)))
            i_ = math.prod(cards[u] for u in hin)
            pen_h[t, :h] = 0.0
            pen_m[t, :m] = 0.0
            pen_v[t, :k] = 0.0
            pen_i[t, :i_] = 0.0
            variable[t] = v
            hob[t, :h] = toff + _axis_index(ho, cards, strides, h)
            mb[t, :m] = _axis_index(mid, cards, strides, m)
            vb[t, :k] = np.arange(k) * strides[v]
            consumed = [(big, toff)]
            for i, tid in enumerate(small):
                soff, sstrides = tables.pop(tid)
                ms[t, i, :m] = soff + _axis_index(mid, cards, sstrides, m)
                vs[t, i, :k] = np.arange(k) * sstrides[v]
                consumed.append((tid, soff))
            for tid, coff in consumed:
                if tid >= len(scopes):
                    free.setdefault(slot_size[tid], []).append(coff)
            pool = free.get(slot)
            if pool:
                o = pool.pop()
            else:
                o = off
                off += slot
            out_off[t] = o
            strides_out: dict[int, int] = {}
            acc = 1
            for u in reversed(hin):
                strides_out[u] = acc
                acc *= cards[u]
            acc = Hi
            for u in reversed(mid):
                strides_out[u] = acc
                acc *= cards[u]
            acc = Hi * M
            for u in reversed(ho):
                strides_out[u] = acc
                acc *= cards[u]
            tables[st.output] = (o, strides_out)
            slot_size[st.output] = slot
            for names, vars_, place_ in (
                (ho, ho_vars, ho_place),
                (mid, mid_vars, mid_place),
                (hin, in_vars, in_place),
            ):
                pl = 1
                for r, u in reversed(list(enumerate(names))):
                    vars_[t, r], place_[t, r] = u, pl
                    pl *= cards[u]
        i32 = np.int32
        segments.append(
            Segment(
                hob.astype(i32),
                mb.astype(i32),
                vb.astype(i32),
                ms.astype(i32),
                vs.astype(i32),
                pen_h,
                pen_m,
                pen_v,
                pen_i,
                out_off.astype(i32),
                variable.astype(i32),
                ho_vars.astype(i32),
                ho_place.astype(i32),
                mid_vars.astype(i32),
                mid_place.astype(i32),
                in_vars.astype(i32),
                in_place.astype(i32),
            )
        )
    off += tail  # contiguous row reads may run past the last table (masked by pen_i)
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
