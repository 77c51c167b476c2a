"""Strict JAX configuration shared by every test.

Several CPU devices let the sharding tests run on one machine; strict rank
promotion catches silent broadcasting bugs (as in equinox's test set-up).
The ``assert_mc_close`` fixture is the Monte Carlo tolerance check shared by
the sampler tests.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_numpy_rank_promotion", "raise")

import umrf  # noqa: E402  (after the JAX configuration above)


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
