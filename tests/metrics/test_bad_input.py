"""Bad input to the metrics: a clear error naming the argument."""

import jax.numpy as jnp
import pytest

import umrf

X = jnp.zeros((10, 2))

CASES = {
    "MMD of samples of different dimension": (
        lambda: umrf.metrics.mmd(X, jnp.zeros((10, 3))),
        ValueError,
        "`x` and `y`",
    ),
    "MMD of one sample": (lambda: umrf.metrics.mmd(X[:1], X), ValueError, "at least 2"),
    "MMD with zero bandwidth": (
        lambda: umrf.metrics.mmd(X, X, bandwidth=0.0),
        ValueError,
        "bandwidth",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_raises_a_clear_error(case):
    fn, err, match = CASES[case]
    with pytest.raises(err, match=match):
        fn()
