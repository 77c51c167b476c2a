"""Fixtures shared by the test suite (the JAX configuration is in the root ``conftest.py``).

* ``assert_mc_close``: the Monte Carlo tolerance check of the sampler tests.
* ``count_compiles``: counts JAX traces and XLA compilations inside a block,
  the proof that rebuilt samplers and new parameters reuse compiled programs.
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf

# Event names JAX records for every jaxpr trace and every backend compilation
# (jax._src.dispatch.JAXPR_TRACE_EVENT / BACKEND_COMPILE_EVENT).
TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@pytest.fixture
def assert_mc_close():
    """Monte Carlo check used by the Gibbs and lattice tests.

    ``assert_mc_close(draws, exact, z=5, floor=2e-3)`` asserts
    ``|sample mean - exact| <= z * sqrt(var / ESS) + floor`` for every
    statistic, where ``draws`` has axes ``(steps, chains, ...)`` and ESS is
    umrf's effective sample size over chains.
    """

    def check(draws, exact, *, z=5.0, floor=2e-3, what=""):
        draws = np.asarray(draws, np.float64)
        mean = draws.mean(axis=(0, 1))
        var = draws.var(axis=(0, 1))
        ess = np.asarray(umrf.samplers.effective_sample_size(jnp.asarray(draws, jnp.float32)))
        se = np.sqrt(var / np.maximum(ess, 1.0))
        err = np.abs(mean - np.asarray(exact))
        assert np.all(err <= z * se + floor), (what, float(np.max(err - z * se)), mean, exact)

    return check


class CompileCounter:
    """Number of jaxpr traces and XLA compilations seen since the block began."""

    def __init__(self):
        self.traces = 0
        self.compiles = 0

    def __call__(self, event, duration, **kwargs):
        if event == TRACE_EVENT:
            self.traces += 1
        elif event == COMPILE_EVENT:
            self.compiles += 1


@pytest.fixture
def count_compiles():
    """``with count_compiles() as c: ...`` then ``c.traces``, ``c.compiles``."""

    @contextlib.contextmanager
    def counting():
        counter = CompileCounter()
        jax.monitoring.register_event_duration_secs_listener(counter)
        try:
            yield counter
        finally:
            jax.monitoring.unregister_event_duration_listener(counter)

    return counting
