"""The sampler-throughput suite behind ``umrf bench`` (part of the installed package).

Cases (``umrf bench --list``): ULA, MALA and annealed Langevin on a 2-D
mixture, a dense Gaussian and an isotropic Gaussian; checkerboard Gibbs on
Ising lattices; GWG, DULA and DMALA on an Ising lattice. Each case's table
puts umrf beside the peers that are installed (blackjax, thrml) and beside
two reference loops: the noise-only ceiling (the random numbers a sampler
must draw, with umrf's per-chain key schedule) and a bound without random
numbers (the gradient, or the local fields, alone). Everything runs on
``jax.default_backend()``.

From Python::

    report = umrf.bench.run_suite(umrf.bench.Config(quick=True), only=["gibbs"])
    print(umrf.bench.render(report))

Extension point: a :class:`Case` is a name and ``build(config) ->
Workload`` (a list of :class:`Job` rows); :func:`register` adds one (see
``umrf/bench/_registry.py`` for the built-in families).
"""

from umrf.bench._core import Case, Config, Job, Row, Workload, measure
from umrf.bench._langevin import STEP_SIZE as LANGEVIN_STEP_SIZE
from umrf.bench._loops import per_chain_loop
from umrf.bench._peers import PEERS, install_hint, peer_version
from umrf.bench._registry import CASES, register
from umrf.bench._suite import SCHEMA, render, run_suite, select_cases
from umrf.bench._targets import Target, gaussian, isotropic, mixture2d

__all__ = [
    "CASES",
    "LANGEVIN_STEP_SIZE",
    "PEERS",
    "SCHEMA",
    "Case",
    "Config",
    "Job",
    "Row",
    "Target",
    "Workload",
    "gaussian",
    "install_hint",
    "isotropic",
    "measure",
    "mixture2d",
    "peer_version",
    "per_chain_loop",
    "register",
    "render",
    "run_suite",
    "select_cases",
]
