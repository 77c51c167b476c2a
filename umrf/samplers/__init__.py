"""Samplers with one shape: ``alg.init(x, params)``, ``alg.step(key, state, params)``."""

from umrf.samplers._adaptation import MALAWarmupResult, mala_warmup
from umrf.samplers._annealed_langevin import (
    AnnealedLangevinInfo,
    AnnealedLangevinState,
    annealed_langevin,
)
from umrf.samplers._annealed_langevin import build_kernel as build_annealed_langevin_kernel
from umrf.samplers._base import SamplingAlgorithm, bind
from umrf.samplers._diagnostics import effective_sample_size, split_rhat
from umrf.samplers._discrete_gradient import DiscreteGradientInfo, DiscreteGradientState
from umrf.samplers._dlp import dmala, dula
from umrf.samplers._driver import Trace, sample_chains
from umrf.samplers._gibbs import gibbs
from umrf.samplers._gibbs_info import GibbsInfo
from umrf.samplers._gwg import gwg
from umrf.samplers._langevin import Clamped
from umrf.samplers._lattice_gibbs import LatticeGibbsState, lattice_gibbs
from umrf.samplers._mala import MALAInfo, MALAState, mala
from umrf.samplers._mala import build_kernel as build_mala_kernel
from umrf.samplers._mrf_gibbs import GibbsState, mrf_gibbs
from umrf.samplers._negatives import (
    NegativesInfo,
    cd_negatives,
    pcd_negatives,
    replay_negatives,
    run_chains,
)
from umrf.samplers._rbm_gibbs import RBMGibbsState, rbm_gibbs
from umrf.samplers._replay_buffer import ReplayBuffer, ReplayBufferState, uniform_init
from umrf.samplers._tempering import (
    TemperedState,
    TemperingInfo,
    TemperingState,
    geometric_temperatures,
    parallel_tempering,
    swap_rates,
    tempered,
)
from umrf.samplers._ula import ULAInfo, ULAState, ula
from umrf.samplers._ula import build_kernel as build_ula_kernel

__all__ = [
    "DiscreteGradientInfo",
    "DiscreteGradientState",
    "RBMGibbsState",
    "TemperedState",
    "TemperingInfo",
    "TemperingState",
    "dmala",
    "dula",
    "geometric_temperatures",
    "gwg",
    "parallel_tempering",
    "rbm_gibbs",
    "swap_rates",
    "tempered",
    "AnnealedLangevinInfo",
    "AnnealedLangevinState",
    "Clamped",
    "GibbsInfo",
    "GibbsState",
    "LatticeGibbsState",
    "MALAInfo",
    "MALAState",
    "MALAWarmupResult",
    "NegativesInfo",
    "ReplayBuffer",
    "ReplayBufferState",
    "SamplingAlgorithm",
    "Trace",
    "ULAInfo",
    "ULAState",
    "annealed_langevin",
    "bind",
    "build_annealed_langevin_kernel",
    "build_mala_kernel",
    "build_ula_kernel",
    "cd_negatives",
    "effective_sample_size",
    "gibbs",
    "lattice_gibbs",
    "mala",
    "mala_warmup",
    "mrf_gibbs",
    "pcd_negatives",
    "replay_negatives",
    "run_chains",
    "sample_chains",
    "split_rhat",
    "ula",
    "uniform_init",
]
