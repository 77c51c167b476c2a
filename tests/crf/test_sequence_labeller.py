"""DeepCNF-style labeller: CNN + CRF beats the CNN alone; metrics and generator checks."""

import numpy as np
import pytest
from flax import nnx

from umrf.crf import (
    SequenceLabeller,
    evaluate_labeller,
    make_protein_dataset,
    q3_accuracy,
    residue_distributions,
    segment_overlap,
    train_labeller,
)
from umrf.crf._protein_data import _segment_length


def test_sov_hand_computed_example():
    # Observed CCCHHHHHCC vs predicted CCCCHHHCCC (H = 0, C = 2), worked by hand:
    # H: (3 + 1)/5 * 5 = 4;  C: (3 + 1)/4 * 3 = 3 and (2 + 1)/3 * 2 = 2;  N = 5 + 5.
    true = np.array([2, 2, 2, 0, 0, 0, 0, 0, 2, 2])
    pred = np.array([2, 2, 2, 2, 0, 0, 0, 2, 2, 2])
    np.testing.assert_allclose(segment_overlap(pred, true), 90.0)
    assert q3_accuracy(pred, true) == 0.8
    assert segment_overlap(true, true) == 100.0
    assert segment_overlap(np.full(10, 1), true) == 0.0
    # Padding is ignored.
    mask = np.arange(12) < 10
    padded = np.concatenate([true, [1, 1]]), np.concatenate([pred, [0, 0]])
    np.testing.assert_allclose(segment_overlap(padded[1], padded[0], mask), 90.0)


def test_generator_statistics():
    d = make_protein_dataset(400, min_length=30, max_length=60, seed=3)
    assert d.residues.shape == (400, 60)
    lengths = d.mask.sum(1)
    assert lengths.min() >= 30 and lengths.max() <= 60
    assert not np.any(~d.mask[:, :-1] & d.mask[:, 1:])  # prefix masks
    # Residue frequencies per state follow residue_distributions (pooled counts).
    emit = residue_distributions(2.0)
    for s in range(3):
        sel = (d.states == s) & d.mask
        freq = np.bincount(d.residues[sel], minlength=20) / sel.sum()
        np.testing.assert_allclose(freq, emit[s], atol=0.015)
    # Documented segment-length laws: means 11 (H), 6 (E), 6 (C) and minima 4, 3, 1.
    rng = np.random.default_rng(0)
    for state, mean, low in ((0, 11.0, 4), (1, 6.0, 3), (2, 6.0, 1)):
        draws = [_segment_length(rng, state) for _ in range(4000)]
        assert min(draws) >= low
        np.testing.assert_allclose(np.mean(draws), mean, atol=0.3)
    # Consecutive segments never share a state, so H -> E -> H changes are visible
    # and the fraction of helix residues dominates.
    assert np.mean(d.states[d.mask] == 0) > np.mean(d.states[d.mask] == 1)
    with pytest.raises(ValueError, match="max_length"):
        make_protein_dataset(2, min_length=10, max_length=5)


def test_crf_beats_network_alone():
    train = make_protein_dataset(600, seed=0)
    test = make_protein_dataset(200, seed=1)
    results = {}
    for use_crf in (False, True):
        model = SequenceLabeller(3, use_crf=use_crf, rngs=nnx.Rngs(0))
        fit = train_labeller(model, train, steps=250, batch_size=32, learning_rate=5e-3)
        assert not fit.diverged
        assert fit.losses[-10:].mean() < 0.6 * fit.losses[:10].mean()
        results[use_crf] = evaluate_labeller(fit.model, test)
        if use_crf:
            results["marginals"] = evaluate_labeller(fit.model, test, decode="marginals")
    net, crf, marg = results[False], results[True], results["marginals"]
    assert crf["sov"] > net["sov"] + 2.0, results
    assert crf["q3"] > net["q3"], results
    assert marg["q3"] > net["q3"], results
