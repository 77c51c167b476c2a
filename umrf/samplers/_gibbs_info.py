"""The Info shared by umrf's Gibbs samplers (general MRFs and lattices)."""

from __future__ import annotations

from typing import NamedTuple

import jax

__all__ = ["GibbsInfo"]


class GibbsInfo(NamedTuple):
    """Diagnostics of one Gibbs sweep.

    Attributes:
      acceptance_rate: always ``1.0`` (Gibbs moves are always accepted).
      diverged: True when the chain is not sampling the model: the incoming
        configuration held a state outside the model's states (e.g. a spin
        0 on an Ising lattice, which can only happen under ``jit``, where it
        cannot be checked before the run), some conditional had no state of
        positive probability (all ``-inf`` or NaN log-potentials), or the new
        configuration has non-finite energy.
    """

    acceptance_rate: jax.Array
    diverged: jax.Array
