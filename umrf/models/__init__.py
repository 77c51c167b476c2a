"""Energies and model containers; each model is a pytree that is its own ``params``."""

from umrf.models._activations import silu
from umrf.models._bayesian_network import from_bayesian_network
from umrf.models._conv import Conv3x3, ConvClassifier, NoiseConditionalConvScore, nnx_logits
from umrf.models._digits import Digits, load_digits
from umrf.models._discrete_mrf import DiscreteMRF, Factor
from umrf.models._factorized import FactorizedBernoulli, FactorizedCategorical
from umrf.models._gaussian import Gaussian
from umrf.models._gaussian_mixture import GaussianMixture
from umrf.models._gaussian_mrf import GaussianMRF
from umrf.models._lattice import ISING_CRITICAL_BETA, Ising, Potts, ising, potts
from umrf.models._neural import (
    MLPEnergy,
    MLPScore,
    NoiseConditionalMLPEnergy,
    NoiseConditionalMLPScore,
    nnx_energy,
    nnx_score,
)
from umrf.models._rbm import BernoulliRBM
from umrf.models._relaxation import Relaxation, encode_states, relaxation
from umrf.models._toy_data import checkerboard, eight_gaussians, rings, two_moons
from umrf.models._uai import read_uai, read_uai_evidence, write_uai

__all__ = [
    "BernoulliRBM",
    "FactorizedBernoulli",
    "FactorizedCategorical",
    "Relaxation",
    "encode_states",
    "relaxation",
    "ISING_CRITICAL_BETA",
    "Ising",
    "Potts",
    "ising",
    "potts",
    "MLPEnergy",
    "MLPScore",
    "NoiseConditionalMLPEnergy",
    "NoiseConditionalMLPScore",
    "nnx_energy",
    "nnx_score",
    "silu",
    "Conv3x3",
    "ConvClassifier",
    "NoiseConditionalConvScore",
    "nnx_logits",
    "Digits",
    "DiscreteMRF",
    "Factor",
    "read_uai",
    "read_uai_evidence",
    "write_uai",
    "from_bayesian_network",
    "load_digits",
    "Gaussian",
    "GaussianMRF",
    "GaussianMixture",
    "checkerboard",
    "eight_gaussians",
    "rings",
    "two_moons",
]
