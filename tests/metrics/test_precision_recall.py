"""k-NN precision/recall against a hand-worked case and a brute-force loop."""

import numpy as np
import pytest

import umrf


def brute_force(real, fake, k):
    """Kynkäänniemi et al. (2019), written as loops over points."""

    def radius(points, i):
        d = sorted(np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i)
        return d[k - 1]

    def covered(q, centres):
        radii = [radius(centres, i) for i in range(len(centres))]
        return any(np.linalg.norm(q - c) <= r for c, r in zip(centres, radii, strict=True))

    precision = np.mean([covered(f, real) for f in fake])
    recall = np.mean([covered(r, fake) for r in real])
    return precision, recall


def test_hand_worked_example():
    # real radii (k=1) are all 1: 0.5 and 0.7 are inside, 10 is not -> precision 2/3.
    # fake radii: 0.2, 0.2, 9.3: real 0 is covered by none; 1, 2, 3 lie within 9.3 of 10.
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [0.7], [10.0]])
    pr = umrf.metrics.knn_precision_recall(real, fake, k=1)
    assert pr == (2 / 3, 0.75)
    # A point exactly on a ball's boundary is inside (<=): real radius 1 reaches 4.0.
    assert umrf.metrics.knn_precision_recall(real, np.array([[4.0], [4.5]]), k=1).precision == 0.5


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_brute_force(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(60, 3))
    fake = 1.3 * rng.normal(size=(45, 3)) + 0.4
    expected = brute_force(real, fake, k)
    np.testing.assert_allclose(umrf.metrics.knn_precision_recall(real, fake, k=k), expected)


def test_blocks_and_image_shaped_samples():
    """Blocked over 1 024 rows: 2 500 points give the same answer as one block would."""
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2500, 2, 2))
    fake = rng.normal(size=(1100, 2, 2)) * 0.5
    pr = umrf.metrics.knn_precision_recall(real, fake, k=3)
    flat_r, flat_f = real.reshape(2500, 4), fake.reshape(1100, 4)
    d_rr = np.linalg.norm(flat_r[:, None] - flat_r[None], axis=-1)
    r_real = np.sort(d_rr, axis=1)[:, 3]
    precision = np.mean((np.linalg.norm(flat_f[:, None] - flat_r[None], axis=-1) <= r_real).any(1))
    np.testing.assert_allclose(pr.precision, precision, atol=1 / 1100)
    assert pr.recall < 0.8 < pr.precision  # a shrunken generator: precise, not covering


def test_identical_and_disjoint_sets():
    x = np.random.default_rng(1).normal(size=(50, 2))
    assert umrf.metrics.knn_precision_recall(x, x, k=3) == (1.0, 1.0)
    assert umrf.metrics.knn_precision_recall(x, x + 100.0, k=3) == (0.0, 0.0)


def test_bad_input():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="k"):
        umrf.metrics.knn_precision_recall(x, x, k=0)
    with pytest.raises(ValueError, match="more than k"):
        umrf.metrics.knn_precision_recall(x, x[:3], k=3)
    with pytest.raises(ValueError, match="per-sample shape"):
        umrf.metrics.knn_precision_recall(x, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="NaN"):
        umrf.metrics.knn_precision_recall(x, np.full((10, 2), np.nan))
