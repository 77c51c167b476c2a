"""umrf: undirected graphical models and energy-based models in JAX.

One energy convention everywhere: ``p(x | params) = exp(-E(params, x) / T) / Z``.
"""

from umrf import crf, graphs, inference, losses, metrics, models, samplers, sharding, training
from umrf._energy import logdensity, score
from umrf.samplers import sample_chains

__version__ = "0.2.0"

__all__ = [
    "crf",
    "graphs",
    "inference",
    "logdensity",
    "losses",
    "metrics",
    "models",
    "sample_chains",
    "samplers",
    "score",
    "sharding",
    "training",
]
