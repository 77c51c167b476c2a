"""The digits loader: scaling, the documented split rule, binarisation."""

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

import umrf


def test_split_is_the_documented_stratified_rule_and_covers_every_image():
    d = umrf.models.load_digits()
    raw = sk_load_digits()
    assert d.x_train.shape == (1438, 8, 8) and d.x_test.shape == (359, 8, 8)
    assert np.intersect1d(d.train_indices, d.test_indices).size == 0
    assert np.union1d(d.train_indices, d.test_indices).size == 1797
    # rebuilt here from the rule in the docstring, independently of the implementation
    expected = []
    for c in range(10):
        idx = np.flatnonzero(raw.target == c)
        expected.append(np.random.default_rng(c).permutation(idx)[: round(0.2 * idx.size)])
    np.testing.assert_array_equal(d.test_indices, np.sort(np.concatenate(expected)))
    np.testing.assert_array_equal(d.x_test, raw.images[d.test_indices] / 16.0)
    np.testing.assert_array_equal(d.y_test, raw.target[d.test_indices])
    assert np.all(np.abs(np.bincount(d.y_test) - 36) <= 1)
    assert d.x_train.dtype == np.float32 and d.x_train.min() == 0.0 and d.x_train.max() == 1.0


def test_binarised_images_threshold_at_half_intensity():
    b = umrf.models.load_digits(binarize=True)
    raw = sk_load_digits()
    np.testing.assert_array_equal(b.x_train, (raw.images[b.train_indices] >= 8).astype(np.float32))
    with pytest.raises(TypeError, match="binarize"):
        umrf.models.load_digits(binarize=1)
