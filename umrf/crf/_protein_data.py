"""Protein-like sequences with three secondary-structure states (documented generator).

A stand-in for real protein secondary-structure data (e.g. CB513) that ships
with umrf and has a known generating process. A sequence is a chain of
*segments*; each segment has a state ``H`` (helix, label 0), ``E`` (strand,
label 1) or ``C`` (coil, label 2), a length and residues drawn from the
state's amino-acid distribution:

1. **Segment states** follow a Markov chain that never repeats a state
   (``P(H→C) = 0.85, P(H→E) = 0.15``; ``P(E→C) = 0.85, P(E→H) = 0.15``;
   ``P(C→H) = 0.55, P(C→E) = 0.45``); the first segment is drawn from
   ``(0.35, 0.25, 0.40)``.
2. **Segment lengths** are ``min + NegBin``: helices ``4 + NB(r=4, mean 7)``
   (mean 11), strands ``3 + NB(r=4, mean 3)`` (mean 6), coils
   ``1 + NB(r=2, mean 5)`` (mean 6) — helices long, strands short, as in
   real proteins.
3. **Residues** (20 amino acids ``ACDEFGHIKLMNPQRSTVWY``) are i.i.d. within a
   segment from a state-dependent distribution ``p_s(a) ∝ exp(strength ·
   π_s(a))``, with Chou–Fasman-like propensities: helix formers ``AELMQKRH``
   get ``π_H = 1``, strand formers ``VIYFWTC`` get ``π_E = 1``, breakers
   ``GPNDS`` get ``π_C = 1``, and 0 otherwise. ``strength`` (default 2.0)
   controls how informative a single residue is (at 2, a lone residue
   gives about 60% accuracy; context and the segment structure do the rest).

Sequences have uniformly random lengths in ``[min_length, max_length]``,
obtained by cropping the segment chain; they are left-aligned and padded
(residue 0, state 0, ``mask`` False) to ``max_length``. The generator is
pure numpy and deterministic given ``seed``.

References:
  P. Y. Chou, G. D. Fasman. Prediction of protein conformation.
  Biochemistry 13(2), 1974 (residue propensities).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from umrf._validation import check_positive, check_positive_int

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
STATES = "HEC"

_FORMERS = {"H": "AELMQKRH", "E": "VIYFWTC", "C": "GPNDS"}
_STATE_TRANSITIONS = np.array([[0.0, 0.15, 0.85], [0.15, 0.0, 0.85], [0.55, 0.45, 0.0]])
_FIRST_STATE = np.array([0.35, 0.25, 0.40])
# (minimum length, negative-binomial r, negative-binomial mean) per state.
_LENGTHS = {0: (4, 4, 7.0), 1: (3, 4, 3.0), 2: (1, 2, 5.0)}


class ProteinData(NamedTuple):
    """A padded batch of protein-like sequences.

    Attributes:
      residues: ``(N, L)`` int32 amino-acid indices into ``AMINO_ACIDS``.
      states: ``(N, L)`` int32 secondary-structure labels (0 = H, 1 = E, 2 = C).
      mask: ``(N, L)`` bool prefix masks (True on the real residues).
    """

    residues: np.ndarray
    states: np.ndarray
    mask: np.ndarray


def residue_distributions(strength: float = 2.0) -> np.ndarray:
    """State-dependent amino-acid distributions ``(3, 20)`` (rows H, E, C)."""
    check_positive("strength", strength, allow_zero=True)
    pi = np.array([[a in _FORMERS[s] for a in AMINO_ACIDS] for s in STATES], dtype=np.float64)
    logits = strength * pi
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def _segment_length(rng: np.random.Generator, state: int) -> int:
    low, r, mean = _LENGTHS[state]
    p = r / (r + mean)
    return low + int(rng.negative_binomial(r, p))


def make_protein_dataset(
    num_sequences: int,
    *,
    min_length: int = 40,
    max_length: int = 80,
    strength: float = 2.0,
    seed: int = 0,
) -> ProteinData:
    """Generate protein-like sequences (see the module docstring for the process).

    Args:
      num_sequences: number of sequences ``N``.
      min_length: shortest sequence length.
      max_length: longest length, also the padded length ``L``.
      strength: informativeness of single residues (0 = none).
      seed: numpy seed; the data are a deterministic function of it.

    Returns:
      :class:`ProteinData` with arrays of shape ``(N, max_length)``.

    Examples:
      >>> from umrf.crf import make_protein_dataset
      >>> d = make_protein_dataset(2, min_length=5, max_length=8, seed=0)
      >>> d.residues.shape, d.mask.sum(1).min() >= 5
      ((2, 8), np.True_)
    """
    num_sequences = check_positive_int("num_sequences", num_sequences)
    min_length = check_positive_int("min_length", min_length)
    max_length = check_positive_int("max_length", max_length)
    if max_length < min_length:
        raise ValueError(f"`max_length` ({max_length}) must be >= `min_length` ({min_length}).")
    rng = np.random.default_rng(seed)
    emit = residue_distributions(strength)
    residues = np.zeros((num_sequences, max_length), np.int32)
    states = np.zeros((num_sequences, max_length), np.int32)
    mask = np.zeros((num_sequences, max_length), bool)
    for n in range(num_sequences):
        length = int(rng.integers(min_length, max_length + 1))
        labels: list[int] = []
        state = int(rng.choice(3, p=_FIRST_STATE))
        while len(labels) < length:
            labels.extend([state] * _segment_length(rng, state))
            state = int(rng.choice(3, p=_STATE_TRANSITIONS[state]))
        lab = np.asarray(labels[:length], np.int32)
        u = rng.random(length)[:, None]
        res = (u > np.cumsum(emit[lab], axis=1)).sum(1)  # inverse-CDF sampling
        states[n, :length] = lab
        residues[n, :length] = np.minimum(res, len(AMINO_ACIDS) - 1)
        mask[n, :length] = True
    return ProteinData(residues, states, mask)
