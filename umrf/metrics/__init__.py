"""Sample-quality and calibration metrics, each beside the baseline that gives it meaning."""

from umrf.metrics._mmd import mmd

__all__ = ["mmd"]
