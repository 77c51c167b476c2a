"""Samplers with one shape: ``alg.init(x, params)``, ``alg.step(key, state, params)``."""

from umrf.samplers._adaptation import MALAWarmupResult, mala_warmup
from umrf.samplers._annealed_langevin import (
    AnnealedLangevinInfo,
    AnnealedLangevinState,
    annealed_langevin,
)
from umrf.samplers._annealed_langevin import build_kernel as build_annealed_langevin_kernel
from umrf.samplers._base import SamplingAlgorithm
from umrf.samplers._diagnostics import effective_sample_size, split_rhat
from umrf.samplers._driver import Trace, sample_chains
from umrf.samplers._gibbs import GibbsInfo, GibbsState, gibbs
from umrf.samplers._lattice_gibbs import LatticeGibbsState, lattice_gibbs
from umrf.samplers._mala import MALAInfo, MALAState, mala
from umrf.samplers._mala import build_kernel as build_mala_kernel
from umrf.samplers._negatives import (
    NegativesInfo,
    cd_negatives,
    pcd_negatives,
    replay_negatives,
    run_chains,
)
from umrf.samplers._replay_buffer import ReplayBuffer, ReplayBufferState, uniform_init
from umrf.samplers._ula import ULAInfo, ULAState, ula
from umrf.samplers._ula import build_kernel as build_ula_kernel

__all__ = [
    "GibbsInfo",
    "GibbsState",
    "LatticeGibbsState",
    "gibbs",
    "lattice_gibbs",
    "NegativesInfo",
    "ReplayBuffer",
    "ReplayBufferState",
    "cd_negatives",
    "pcd_negatives",
    "replay_negatives",
    "run_chains",
    "uniform_init",
    "SamplingAlgorithm",
    "AnnealedLangevinInfo",
    "AnnealedLangevinState",
    "MALAInfo",
    "MALAState",
    "Trace",
    "ULAInfo",
    "ULAState",
    "annealed_langevin",
    "mala",
    "sample_chains",
    "ula",
    "effective_sample_size",
    "split_rhat",
    "MALAWarmupResult",
    "mala_warmup",
    "build_annealed_langevin_kernel",
    "build_mala_kernel",
    "build_ula_kernel",
]
