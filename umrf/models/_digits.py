"""scikit-learn's bundled handwritten digits with umrf's one fixed train/test split.

The images are ``load_digits()`` (1 797 grey-scale 8×8 digits, pixel values
0..16, UCI "optdigits" test set), shipped inside scikit-learn, so no download
is needed. umrf scales pixels to ``[0, 1]`` (``pixel / 16``) and fixes ONE
split for every digits example (JEM, the score network, the RBMs):

* **Split rule.** Stratified by class: within each class ``c``, the indices
  of that class (ascending) are permuted by ``numpy.random.default_rng(c)``
  and the first ``round(0.2 · n_c)`` go to the test set. Both index sets are
  returned sorted. That is 1 438 training and 359 test images, 35 to 37 test images
  of every class. The split depends on nothing else (no global
  seed), so anyone can rebuild it with their own tools from the indices.
* **Binarised.** ``binarize=True`` gives the RBM's binary images,
  ``pixel >= 8 → 1`` (i.e. ``value >= 0.5`` after scaling).

scikit-learn is imported lazily: it is a dependency of the demos and tests
(``pip install 'umrf[dev]'`` or ``pip install scikit-learn``), not of umrf.

Reference:
  E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI
  Machine Learning Repository, 1998.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

__all__ = ["Digits", "load_digits"]

TEST_FRACTION = 0.2


class Digits(NamedTuple):
    """The digits with umrf's fixed split.

    Attributes:
      x_train: ``(N_train, 8, 8)`` float32 images in ``[0, 1]`` (or ``{0, 1}``).
      y_train: ``(N_train,)`` int32 labels 0..9.
      x_test: ``(N_test, 8, 8)``.
      y_test: ``(N_test,)``.
      train_indices: ``(N_train,)`` indices into ``sklearn.datasets.load_digits()``.
      test_indices: ``(N_test,)`` indices into ``sklearn.datasets.load_digits()``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_indices: np.ndarray
    test_indices: np.ndarray


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as err:  # pragma: no cover - exercised only without scikit-learn
        raise ImportError(
            "umrf.models.load_digits needs scikit-learn (it ships the data): "
            "pip install scikit-learn  (or pip install 'umrf[dev]')."
        ) from err
    d = sk_load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int32)


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stratified split of ``labels`` (module docstring): ``(train, test)`` indices."""
    labels = np.asarray(labels)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = np.random.default_rng(int(c)).permutation(idx)
        test.append(perm[: int(round(TEST_FRACTION * idx.size))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx)
    return train_idx, test_idx


def load_digits(*, binarize: bool = False) -> Digits:
    """The 8×8 digits scaled to ``[0, 1]``, split into umrf's fixed train and test sets.

    Args:
      binarize: keyword-only; ``True`` thresholds ``pixel >= 8`` (of 16) to 1,
        the binary images of the RBM examples.

    Returns:
      :class:`Digits` ``(x_train, y_train, x_test, y_test, train_indices,
      test_indices)``; the indices address ``sklearn.datasets.load_digits()``.

    Examples:
      >>> import umrf
      >>> d = umrf.models.load_digits()
      >>> d.x_train.shape, d.x_test.shape, float(d.x_train.max())
      ((1438, 8, 8), (359, 8, 8), 1.0)
    """
    if not isinstance(binarize, bool):
        raise TypeError(f"`binarize` must be a bool; got {type(binarize).__name__}.")
    images, labels = _raw()
    x = images / 16.0
    if binarize:
        x = (images >= 8.0).astype(np.float32)
    train_idx, test_idx = split_indices(labels)
    return Digits(
        x[train_idx], labels[train_idx], x[test_idx], labels[test_idx], train_idx, test_idx
    )
