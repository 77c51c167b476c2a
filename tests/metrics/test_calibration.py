"""Expected calibration error and reliability diagrams against hand-computed bins."""

import numpy as np
import pytest

import umrf


def test_hand_computed_bins():
    # Confidences 0.95, 0.9 (bin 14 of 15, (13/15, 14/15] holds 0.9; 0.95 is in bin 15),
    # 0.6 (bin 9: (8/15, 9/15] holds 0.6 exactly) and 0.4 (bin 6: (5/15, 6/15] holds 0.4).
    probs = np.array([[0.95, 0.05, 0.0], [0.1, 0.9, 0.0], [0.2, 0.2, 0.6], [0.4, 0.3, 0.3]])
    labels = np.array([0, 0, 2, 1])
    d = umrf.metrics.reliability_diagram(probs, labels, num_bins=15)
    assert d.count.tolist() == [0] * 5 + [1, 0, 0, 1, 0, 0, 0, 0, 1, 1]
    np.testing.assert_allclose(d.bin_edges, np.arange(16) / 15)
    filled = d.count > 0
    np.testing.assert_allclose(d.confidence[filled], [0.4, 0.6, 0.9, 0.95])
    np.testing.assert_allclose(d.accuracy[filled], [0.0, 1.0, 0.0, 1.0])
    assert np.all(np.isnan(d.accuracy[~filled]))
    expected = (0.4 + 0.4 + 0.9 + 0.05) / 4
    np.testing.assert_allclose(
        umrf.metrics.expected_calibration_error(probs, labels, num_bins=15), expected
    )


def test_perfectly_calibrated_and_overconfident():
    # Within each bin the accuracy equals the confidence exactly: ECE = 0.
    probs = np.array([[0.8, 0.2]] * 5 + [[0.4, 0.6]] * 5)
    labels = np.array([0, 0, 0, 0, 1] + [1, 1, 1, 0, 0])
    assert umrf.metrics.expected_calibration_error(probs, labels, num_bins=10) == pytest.approx(0)
    # Always certain, right half the time: ECE = 0.5.
    certain = np.array([[1.0, 0.0]] * 4)
    assert umrf.metrics.expected_calibration_error(certain, np.array([0, 1, 0, 1])) == 0.5


def test_bad_input():
    p = np.array([[0.5, 0.5]])
    with pytest.raises(ValueError, match="num_bins"):
        umrf.metrics.expected_calibration_error(p, np.array([0]), num_bins=0)
    with pytest.raises(ValueError, match="labels"):
        umrf.metrics.expected_calibration_error(p, np.array([0.0]))
    with pytest.raises(ValueError, match="labels"):
        umrf.metrics.expected_calibration_error(p, np.array([2]))
    with pytest.raises(ValueError, match="sum to 1"):
        umrf.metrics.expected_calibration_error(np.array([[2.0, 0.5]]), np.array([0]))
    with pytest.raises(ValueError, match="probs"):
        umrf.metrics.expected_calibration_error(np.array([0.5, 0.5]), np.array([0, 1]))
