"""Strict JAX configuration for everything pytest collects: tests, doctests, README blocks.

Several CPU devices let the sharding tests run on one machine; strict rank
promotion catches silent broadcasting bugs (as in equinox's test set-up);
hypothesis is derandomized. It lives at the repository root so that
``pytest --doctest-modules umrf`` runs the
docstring examples under exactly the configuration of the test suite.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
from hypothesis import settings  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_numpy_rank_promotion", "raise")

# Property tests draw the same examples on every run and machine: a failure is
# reproducible, never a flake (a new example set is a deliberate change of seed).
settings.register_profile("umrf", derandomize=True, print_blob=True)
settings.load_profile("umrf")
