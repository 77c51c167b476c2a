"""Samplers with one shape: ``alg.init(x, params)``, ``alg.step(key, state, params)``."""

from umrf.samplers._base import SamplingAlgorithm

__all__ = ["SamplingAlgorithm"]
