"""Strict JAX configuration shared by every test.

Several CPU devices let the sharding tests run on one machine; strict rank
promotion catches silent broadcasting bugs (as in equinox's test set-up).
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_numpy_rank_promotion", "raise")
