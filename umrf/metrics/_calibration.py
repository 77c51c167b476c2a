r"""Expected calibration error and reliability diagrams of a classifier.

A classifier is calibrated when, among the inputs it predicts with
confidence ``c`` (its largest class probability), a fraction ``c`` is
classified correctly. With ``M`` equal-width confidence bins
``B_m = ((m-1)/M, m/M]`` (the first bin also holds confidence 0),

.. math::

   \mathrm{acc}(B_m) = \frac{1}{|B_m|}\sum_{i \in B_m} 1[\hat y_i = y_i],\qquad
   \mathrm{conf}(B_m) = \frac{1}{|B_m|}\sum_{i \in B_m} \max_k p_{ik},

   \mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{n}\,
                  \big|\mathrm{acc}(B_m) - \mathrm{conf}(B_m)\big|

(Naeini et al. 2015; Guo et al. 2017, who use ``M = 15``). The reliability
diagram plots ``acc(B_m)`` against ``conf(B_m)``; a calibrated model lies on
the diagonal. ``ŷ`` is the first class of largest probability.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["ReliabilityDiagram", "expected_calibration_error", "reliability_diagram"]


class ReliabilityDiagram(NamedTuple):
    """Per-bin calibration statistics.

    Attributes:
      bin_edges: ``(M + 1,)`` edges ``0, 1/M, …, 1``.
      confidence: ``(M,)`` mean confidence per bin (NaN for an empty bin).
      accuracy: ``(M,)`` accuracy per bin (NaN for an empty bin).
      count: ``(M,)`` number of examples per bin.
    """

    bin_edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def _check(probs: Any, labels: Any, num_bins: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(num_bins, int | np.integer) or isinstance(num_bins, bool) or num_bins < 1:
        raise ValueError(f"`num_bins` must be an int >= 1; got {num_bins!r}.")
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(
            f"`probs` must be (n, num_classes) class probabilities with n >= 1; got {p.shape}."
        )
    if y.shape != (p.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"`labels` must be ({p.shape[0]},) integer class labels; got {y.dtype} {y.shape}."
        )
    if np.any((y < 0) | (y >= p.shape[1])):
        raise ValueError(f"`labels` must lie in 0..{p.shape[1] - 1}.")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(np.abs(p.sum(1) - 1) > 1e-3):
        raise ValueError(
            "`probs` must be finite, non-negative and sum to 1 per row; pass softmax "
            "probabilities, e.g. jax.nn.softmax(logits, axis=-1)."
        )
    return p, y


def reliability_diagram(probs: Any, labels: Any, *, num_bins: int = 15) -> ReliabilityDiagram:
    """Per-bin accuracy and confidence (module docstring) for a reliability diagram.

    Args:
      probs: ``(n, K)`` predicted class probabilities.
      labels: ``(n,)`` integer true labels.
      num_bins: keyword-only number ``M`` of equal-width confidence bins.

    Returns:
      :class:`ReliabilityDiagram`; empty bins have NaN accuracy and confidence.

    Examples:
      >>> import numpy as np, umrf
      >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
      >>> d = umrf.metrics.reliability_diagram(probs, np.array([0, 1, 1]), num_bins=2)
      >>> d.count.tolist(), d.accuracy.tolist()
      ([0, 3], [nan, 0.6666666666666666])
    """
    p, y = _check(probs, labels, num_bins)
    conf = p.max(1)
    correct = (p.argmax(1) == y).astype(np.float64)
    # Bin m (0-based) holds (m/M, (m+1)/M]; confidence 0 goes to bin 0.
    index = np.clip(np.ceil(conf * num_bins).astype(np.int64) - 1, 0, num_bins - 1)
    count = np.bincount(index, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, conf, minlength=num_bins) / count
        accuracy = np.bincount(index, correct, minlength=num_bins) / count
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    return ReliabilityDiagram(edges, mean_conf, accuracy, count)


def expected_calibration_error(probs: Any, labels: Any, *, num_bins: int = 15) -> float:
    """Expected calibration error with ``num_bins`` equal-width bins (module docstring).

    Args:
      probs: ``(n, K)`` predicted class probabilities.
      labels: ``(n,)`` integer true labels.
      num_bins: keyword-only number ``M`` of bins (15, as in Guo et al. 2017).

    Returns:
      ECE as a float in ``[0, 1]``.

    Examples:
      >>> import numpy as np, umrf
      >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
      >>> round(umrf.metrics.expected_calibration_error(probs, np.array([0, 1, 1]), num_bins=2), 6)
      0.133333

    References:
      Naeini, Cooper & Hauskrecht, *Obtaining well calibrated probabilities
      using Bayesian binning*, AAAI 2015. Guo, Pleiss, Sun & Weinberger, *On
      calibration of modern neural networks*, ICML 2017.
    """
    d = reliability_diagram(probs, labels, num_bins=num_bins)
    n = d.count.sum()
    filled = d.count > 0
    gaps = np.abs(d.accuracy[filled] - d.confidence[filled])
    return float(np.sum(d.count[filled] / n * gaps))
