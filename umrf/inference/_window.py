r"""Static plans for the dense sum-product engine: variable elimination in blocks on a window.

Order the variables by an elimination order (rank ``r = 0, …, n−1``) and let
the *width* ``W`` be the largest rank span ``max(rank) − min(rank)`` of a
factor. After ranks ``< lo`` are summed out, the running message depends only
on ranks ``[lo, lo + W)``: a factor reaching a smaller rank spans at most
``W``. The engine keeps that message as one dense table in rank order (a
*window*; ranks not touched yet are constant axes) and eliminates ``k``
consecutive ranks per *block*:

    S_b[c, m, n] = Σ_{internal} Π_{f ∈ b} ψ_f                     (small, from the factors)
    τ_{b+1}[m, h, n] = Σ_c τ_b[c, m, h] · S_b[c, m, n]            (one batched GEMM)

``c`` are the ranks eliminated (``[lo, lo + k)``), ``m`` the next window
ranks that the block's factors touch (padded to a contiguous run right
after ``c`` so the layout stays rank order), ``h`` the untouched rest and
``n`` the ranks that enter the window (``[lo + W, lo + W + k)``). A factor is
used by the block holding its smallest rank. When ``W < k`` the ranks of the
block beyond the window are summed inside ``S`` (``internal``). Ranks past
``n − 1`` are *dummy* axes (constant; each contributes ``log K_dummy`` that the
plan's ``constant`` removes), so every block of a model whose variables share
one cardinality has the same shapes and a compiled program is one loop.

On a grid in row-major order ``W`` is the row length and ``τ`` is the
transfer-matrix message of the row-by-row sweep (Baxter, 1982, ch. 7); ``k``
eliminations per GEMM trade flops (``2 |τ| K^k`` per block) against passes
over memory (one per block instead of one per variable).

Everything here is static metadata computed from cardinalities, scopes and
an order (DESIGN.md §5), cached per structure.

References:
  Baxter, *Exactly Solved Models in Statistical Mechanics*, 1982, ch. 7.
  Koller & Friedman, *Probabilistic Graphical Models*, 2009, §9.4 (bucket / block elimination).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

# Largest small table S (entries, internal axes included) a block may build.
MAX_SMALL_SIZE = 2**13
# Target of C·N (entries of the GEMM's inner square) when choosing the block size k.
TARGET_INNER = 2**9


class PatternGroup(NamedTuple):
    """Blocks whose small tables are built the same way (one vectorised pass).

    Attributes:
      blocks: block indices in this group.
      factors: ``factors[j]`` lists, per block of the group, the factor id in slot ``j``.
      axes: per slot, the axes of ``S_full`` the factor's variables map to (in
        the factor's own scope order).
      full_shape: shape of the block's ``S_full`` table (axes: ``c``, ``m``,
        ``n``, then ``internal``).
      shape: ``(C, M, N)``, the small table after the internal axes are summed.
      internal: how many trailing axes of ``S_full`` are summed inside the block.
    """

    blocks: tuple[int, ...]
    factors: tuple[tuple[int, ...], ...]
    axes: tuple[tuple[int, ...], ...]
    full_shape: tuple[int, ...]
    shape: tuple[int, int, int]
    internal: int


class WindowProgram(NamedTuple):
    """A block-elimination plan on a rank window (see the module docstring).

    Attributes:
      order: the elimination order (rank → variable).
      block: ``k``, the ranks eliminated per block.
      width: ``W``, the window (in ranks).
      dummy_card: cardinality of the dummy ranks past ``n − 1``.
      shapes: per block ``(C, M, H, N)``: the window is read as ``(C, M, H)``
        and the next window is ``(M, H, N)``.
      window_size: entries of the first window (``C·M·H`` of block 0, or the
        final window when there are no blocks).
      final_size: entries of the window after the last block.
      groups: the :class:`PatternGroup` s (every block is in exactly one).
      scalar_factors: factors with an empty scope (added to ``log Z``).
      constant: ``−(number of dummy ranks) · log K_dummy``.
      uniform: every block has the same shapes (one compiled loop suffices).
      largest: entries of the largest table built (a window or a small table).
      work: ``Σ_b 2·C·M·H·N`` (multiply-adds of the GEMMs, times two).
      factor_shapes: the shape of every factor's table.
    """

    order: tuple[int, ...]
    block: int
    width: int
    dummy_card: int
    shapes: tuple[tuple[int, int, int, int], ...]
    window_size: int
    final_size: int
    groups: tuple[PatternGroup, ...]
    scalar_factors: tuple[int, ...]
    constant: float
    uniform: bool
    largest: int
    work: int
    factor_shapes: tuple[tuple[int, ...], ...]


def window_width(scopes: tuple[tuple[int, ...], ...], rank: dict[int, int]) -> int:
    """The largest rank span of a factor under ``rank``."""
    width = 0
    for s in scopes:
        if len(s) > 1:
            rs = [rank[v] for v in s]
            width = max(width, max(rs) - min(rs))
    return width


def _choose_block(cards: tuple[int, ...], width: int, n: int) -> int:
    """Block size: the largest ``k`` with ``K^(2k) ≤ TARGET_INNER`` (``K`` the largest card)."""
    big = max(cards) if cards else 2
    k = 1
    while k < 8 and big ** (2 * (k + 1)) <= TARGET_INNER:
        k += 1
    return max(1, min(k, max(n, 1)))


@functools.lru_cache(maxsize=256)
def build_window_program(
    cardinalities: tuple[int, ...],
    scopes: tuple[tuple[int, ...], ...],
    order: tuple[int, ...],
    block: int | None = None,
) -> WindowProgram | None:
    """Build (and cache) the window program of a structure under ``order``.

    Args:
      cardinalities: ``K_i`` per variable.
      scopes: the factors' scopes.
      order: an elimination order (a permutation of ``0..n−1``).
      block: ``k``; ``None`` picks it from the cardinalities.

    Returns:
      A :class:`WindowProgram`, or ``None`` when even ``k = 1`` needs a small
      table above :data:`MAX_SMALL_SIZE` (the order is not banded enough).
    """
    n = len(cardinalities)
    rank = {v: r for r, v in enumerate(order)}
    width = window_width(scopes, rank)
    ks = [block] if block is not None else None
    if ks is None:
        k0 = _choose_block(cardinalities, width, n)
        ks = list(range(k0, 0, -1))
    for k in ks:
        prog = _build(cardinalities, scopes, order, rank, width, k)
        if prog is not None:
            return prog
    return None


def _build(cards, scopes, order, rank, width, k) -> WindowProgram | None:
    n = len(cards)
    num_blocks = -(-n // k) if n else 0
    real = [cards[v] for v in order]
    dummy = max(cards) if cards else 1
    if len(set(cards)) > 1:
        dummy = 1  # mixed cardinalities: shapes differ anyway; dummies cost nothing
    total_ranks = num_blocks * k + width
    rank_card = real + [dummy] * (total_ranks - n)

    # Factors per block (by smallest rank) and the window positions they touch.
    per_block: list[list[int]] = [[] for _ in range(num_blocks)]
    scalars = []
    for f, s in enumerate(scopes):
        if not s:
            scalars.append(f)
            continue
        lo_rank = min(rank[v] for v in s)
        per_block[lo_rank // k].append(f)
    # m: window ranks kept by the block (rank in [lo + k, lo + W)) that its factors touch;
    # padded to the contiguous run [k, k + mc) so the next window stays in rank order.
    mc = 0
    if width >= k:
        for b, fs in enumerate(per_block):
            lo = b * k
            for f in fs:
                for v in scopes[f]:
                    p = rank[v] - lo
                    if k <= p < width:
                        mc = max(mc, p - k + 1)
    shapes = []
    groups: dict[tuple, list] = {}
    largest = 1
    work = 0
    uniform = True
    for b in range(num_blocks):
        lo = b * k
        if width >= k:
            c_pos = list(range(0, k))
            m_pos = list(range(k, k + mc))
            h_pos = list(range(k + mc, width))
            n_pos = list(range(width, width + k))
            internal = []
        else:
            c_pos = list(range(0, width))
            m_pos, h_pos = [], []
            internal = list(range(width, k))
            n_pos = list(range(k, k + width))
        full_pos = c_pos + m_pos + n_pos + internal
        axis_of = {p: a for a, p in enumerate(full_pos)}
        full_shape = tuple(rank_card[lo + p] for p in full_pos)
        C = math.prod(rank_card[lo + p] for p in c_pos)
        M = math.prod(rank_card[lo + p] for p in m_pos)
        H = math.prod(rank_card[lo + p] for p in h_pos)
        N = math.prod(rank_card[lo + p] for p in n_pos)
        size_full = math.prod(full_shape)
        if size_full > MAX_SMALL_SIZE:
            return None
        shapes.append((C, M, H, N))
        largest = max(largest, C * M * H, M * H * N, size_full)
        work += 2 * C * M * H * N
        slots = []
        for f in sorted(per_block[b], key=lambda f: (scopes[f], f)):
            ax = tuple(axis_of[rank[v] - lo] for v in scopes[f])
            slots.append((f, ax))
        key = (full_shape, (C, M, N), len(internal), tuple(ax for _, ax in slots))
        groups.setdefault(key, []).append((b, tuple(f for f, _ in slots)))
    if shapes and (len(set(shapes)) > 1 or shapes[0][0] != shapes[0][3]):
        uniform = False  # a loop needs one shape that maps the window onto itself (C = N)
    out_groups = []
    for (full_shape, shape, n_internal, axes), members in groups.items():
        blocks = tuple(b for b, _ in members)
        factors = tuple(tuple(fs[j] for _, fs in members) for j in range(len(axes)))
        out_groups.append(PatternGroup(blocks, factors, axes, full_shape, shape, n_internal))
    if num_blocks:
        C, M, H, N = shapes[0]
        window_size = C * M * H
        Cl, Ml, Hl, Nl = shapes[-1]
        final_size = Ml * Hl * Nl
    else:
        window_size = final_size = math.prod(rank_card[:width]) if width else 1
    num_dummy = total_ranks - n
    constant = -num_dummy * math.log(dummy) if dummy > 1 else 0.0
    return WindowProgram(
        order=tuple(order),
        block=k,
        width=width,
        dummy_card=dummy,
        shapes=tuple(shapes),
        window_size=window_size,
        final_size=final_size,
        groups=tuple(out_groups),
        scalar_factors=tuple(scalars),
        constant=constant,
        uniform=uniform,
        largest=largest,
        work=work,
        factor_shapes=tuple(tuple(cards[v] for v in sc) for sc in scopes),
    )


@functools.lru_cache(maxsize=256)
def group_index(prog: WindowProgram) -> tuple[np.ndarray, ...]:
    """Per pattern group, ``idx[g, p, s]``: where slot ``s``'s entry for cell ``p`` lives.

    Positions index the flat vector of all factors' tables (factor order, each
    in C order; see ``factor_shapes``); ``size`` (one past the end) marks an
    unused slot and points at an appended zero. ``S_full`` of the group's
    blocks is ``flat[idx].sum(-1)`` (cells in C order of ``full_shape``).
    """
    offsets = np.cumsum([0] + [math.prod(s) for s in prog.factor_shapes])
    size = int(offsets[-1])
    out = []
    for g in prog.groups:
        P = math.prod(g.full_shape)
        idx = np.full((len(g.blocks), P, max(len(g.factors), 1)), size, np.int64)
        coords = np.indices(g.full_shape).reshape(len(g.full_shape), P)
        for j, (fs, axes) in enumerate(zip(g.factors, g.axes, strict=True)):
            local = np.zeros(P, np.int64)
            for a, d in zip(axes, prog.factor_shapes[fs[0]], strict=True):
                local = local * d + coords[a]
            idx[:, :, j] = offsets[np.asarray(fs)][:, None] + local[None, :]
        out.append(idx)
    return tuple(out)


@functools.lru_cache(maxsize=256)
def block_index(prog: WindowProgram) -> np.ndarray | None:
    """:func:`group_index` of every block in block order, when all groups share ``S_full``'s shape.

    ``None`` when the groups' tables differ in shape (mixed cardinalities).
    """
    if not prog.groups:
        return None
    shapes = {(g.full_shape, g.internal) for g in prog.groups}
    if len(shapes) > 1:
        return None
    per_group = group_index(prog)
    slots = max(idx.shape[2] for idx in per_group)
    size = sum(math.prod(s) for s in prog.factor_shapes)
    P = math.prod(prog.groups[0].full_shape)
    out = np.full((len(prog.shapes), P, slots), size, np.int64)
    for g, idx in zip(prog.groups, per_group, strict=True):
        out[np.asarray(g.blocks), :, : idx.shape[2]] = idx
    return out
