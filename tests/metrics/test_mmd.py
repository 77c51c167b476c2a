"""MMD against a brute-force computation and the data-vs-data baseline."""

import numpy as np
import pytest

import umrf


def test_mmd_matches_brute_force_and_baseline():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    y = rng.normal(size=(40, 2)) + 0.5
    h = 0.8

    def k(a, b):
        return np.exp(-np.sum((a[:, None] - b[None]) ** 2, -1) / (2 * h * h))

    kxx, kyy = k(x, x), k(y, y)
    expected = (
        (kxx.sum() - np.trace(kxx)) / (50 * 49)
        + (kyy.sum() - np.trace(kyy)) / (40 * 39)
        - 2 * k(x, y).mean()
    )
    np.testing.assert_allclose(umrf.metrics.mmd(x, y, bandwidth=h), expected, rtol=1e-4)
    same = umrf.metrics.mmd(rng.normal(size=(400, 2)), rng.normal(size=(400, 2)))
    diff = umrf.metrics.mmd(rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) + 1.0)
    assert abs(float(same)) < 0.01 < float(diff)
    with pytest.raises(ValueError):
        umrf.metrics.mmd(x, y[:, :1])
    with pytest.raises(ValueError, match="bandwidth"):
        umrf.metrics.mmd(x, y, bandwidth=0.0)
