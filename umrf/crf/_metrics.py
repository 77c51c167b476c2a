"""Evaluation metrics for the CRF examples: Q3, segment overlap (SOV'99), mean IoU.

These are host-side numpy functions (evaluation, not training).
"""

from __future__ import annotations

import numpy as np


def q3_accuracy(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Per-residue accuracy over valid positions (``Q3`` for three states), in [0, 1].

    Args:
      pred: ``(N, L)`` (or ``(L,)``) predicted labels.
      true: same shape, reference labels.
      mask: optional boolean mask of valid positions.

    Returns:
      The fraction of valid positions where ``pred == true``.
    """
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise ValueError(f"`pred` {pred.shape} and `true` {true.shape} must have the same shape.")
    mask = np.ones(pred.shape, bool) if mask is None else np.asarray(mask, bool)
    return float(np.sum((pred == true) & mask) / np.sum(mask))


def _segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs ``(state, first, last)`` (inclusive) of a 1-D label array."""
    out = []
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            out.append((int(labels[start]), start, t - 1))
            start = t
    return out


def _sov_terms(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """Numerator and normaliser ``N`` of SOV'99 for one sequence."""
    obs, prd = _segments(true), _segments(pred)
    num, norm = 0.0, 0.0
    for state, a0, a1 in obs:
        len1 = a1 - a0 + 1
        overlapping = False
        for pstate, b0, b1 in prd:
            if pstate != state or b1 < a0 or b0 > a1:
                continue
            overlapping = True
            len2 = b1 - b0 + 1
            minov = min(a1, b1) - max(a0, b0) + 1
            maxov = max(a1, b1) - min(a0, b0) + 1
            delta = min(maxov - minov, minov, len1 // 2, len2 // 2)
            num += (minov + delta) / maxov * len1
            norm += len1
        if not overlapping:
            norm += len1
    return num, norm


def segment_overlap(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> float:
    r"""Segment overlap score SOV'99 (Zemla et al. 1999), in [0, 100].

    For observed segments ``s1`` and predicted segments ``s2`` of the same
    state, over all overlapping pairs ``S`` and observed segments without a
    partner ``S'``:

    .. math::

       SOV = 100 \cdot \frac{1}{N} \sum_{(s1, s2) \in S}
             \frac{minov + δ}{maxov} \, len(s1), \qquad
       N = \sum_{S} len(s1) + \sum_{S'} len(s1),

    with ``minov`` the overlap length, ``maxov`` the extent of the union and
    ``δ = min(maxov - minov, minov, ⌊len(s1)/2⌋, ⌊len(s2)/2⌋)``. This is the
    1999 variant (Zemla, Venclovas, Fidelis & Rost), which fixes the
    normalisation of Rost, Sander & Schneider (1994). Sequences are pooled:
    numerators and normalisers are summed over all sequences of the batch
    before dividing (each residue weighs the same).

    Args:
      pred: ``(N, L)`` or ``(L,)`` predicted labels.
      true: same shape, reference labels.
      mask: optional prefix masks; each sequence is cut to its valid prefix.

    Returns:
      SOV in percent.

    References:
      A. Zemla, Č. Venclovas, K. Fidelis, B. Rost. A modified definition of
      Sov, a segment-based measure for protein secondary structure
      prediction assessment. Proteins 34, 1999.
    """
    pred, true = np.atleast_2d(np.asarray(pred)), np.atleast_2d(np.asarray(true))
    if pred.shape != true.shape:
        raise ValueError(f"`pred` {pred.shape} and `true` {true.shape} must have the same shape.")
    mask = np.ones(pred.shape, bool) if mask is None else np.atleast_2d(np.asarray(mask, bool))
    num, norm = 0.0, 0.0
    for p, t, m in zip(pred, true, mask, strict=True):
        n = int(m.sum())
        a, b = _sov_terms(p[:n], t[:n])
        num, norm = num + a, norm + b
    return 100.0 * num / norm


def mean_iou(
    pred: np.ndarray, true: np.ndarray, num_classes: int, mask: np.ndarray | None = None
) -> float:
    """Mean intersection-over-union over classes present in ``pred`` or ``true``.

    ``IoU_c = |pred = c ∧ true = c| / |pred = c ∨ true = c|``, averaged over
    the classes whose union is non-empty (pooled over all images).

    Args:
      pred: integer label maps of any shape.
      true: same shape.
      num_classes: number of classes ``C``.
      mask: optional boolean mask of pixels to count.

    Returns:
      Mean IoU in [0, 1].
    """
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise ValueError(f"`pred` {pred.shape} and `true` {true.shape} must have the same shape.")
    mask = np.ones(pred.shape, bool) if mask is None else np.asarray(mask, bool)
    ious = []
    for c in range(num_classes):
        p, t = (pred == c) & mask, (true == c) & mask
        union = np.sum(p | t)
        if union > 0:
            ious.append(np.sum(p & t) / union)
    return float(np.mean(ious))
