"""Sample-quality and calibration metrics, each beside the baseline that gives it meaning."""

from umrf.metrics._calibration import (
    ReliabilityDiagram,
    expected_calibration_error,
    reliability_diagram,
)
from umrf.metrics._frechet import PCA, frechet_distance, pca
from umrf.metrics._mmd import mmd
from umrf.metrics._precision_recall import PrecisionRecall, knn_precision_recall

__all__ = [
    "PCA",
    "PrecisionRecall",
    "ReliabilityDiagram",
    "expected_calibration_error",
    "frechet_distance",
    "knn_precision_recall",
    "mmd",
    "pca",
    "reliability_diagram",
]
