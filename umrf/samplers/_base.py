"""The one shape every umrf sampler has (DESIGN.md §3), and value-equal binding.

    alg = umrf.samplers.<name>(...)
    state = alg.init(x, params)                  # one chain
    state, info = alg.step(key, state, params)   # pure, jit/vmap safe

Every State is a NamedTuple with a ``position`` field; every Info is a
NamedTuple with ``acceptance_rate`` and ``diverged`` fields (MALA adds
``is_accepted``). Batching over chains is ``jax.vmap`` (or
``umrf.sample_chains``).

**Value equality.** A constructor builds ``init`` and ``step`` with
:func:`bind`, so two algorithms built from equal inputs (the same function
objects, equal hyperparameters, an equal model structure) compare and hash
equal; :func:`umrf.sample_chains` keys its compiled programs on the algorithm,
so a loop that rebuilds its sampler reuses the program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from umrf._bind import bind

__all__ = ["SamplingAlgorithm", "bind"]

InitFn = Callable[[Any, Any], Any]
StepFn = Callable[[jax.Array, Any, Any], tuple[Any, Any]]


class SamplingAlgorithm(NamedTuple):
    """A sampler as a pair of pure functions.

    Attributes:
      init: ``init(position, params) -> State`` for one chain.
      step: ``step(key, state, params) -> (State, Info)``; one transition.
    """

    init: InitFn
    step: StepFn
