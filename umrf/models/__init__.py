"""Energies and model containers; each model is a pytree that is its own ``params``."""

from umrf.models._discrete_mrf import DiscreteMRF, Factor
from umrf.models._gaussian import Gaussian
from umrf.models._gaussian_mixture import GaussianMixture
from umrf.models._gaussian_mrf import GaussianMRF
from umrf.models._toy_data import checkerboard, eight_gaussians, rings, two_moons
from umrf.models._neural import (
    MLPEnergy,
    MLPScore,
    NoiseConditionalMLPEnergy,
    NoiseConditionalMLPScore,
    nnx_energy,
    nnx_score,
)

__all__ = [
    "MLPEnergy",
    "MLPScore",
    "NoiseConditionalMLPEnergy",
    "NoiseConditionalMLPScore",
    "nnx_energy",
    "nnx_score",
    "DiscreteMRF",
    "Factor",
    "Gaussian",
    "GaussianMRF",
    "GaussianMixture",
    "checkerboard",
    "eight_gaussians",
    "rings",
    "two_moons",
]
