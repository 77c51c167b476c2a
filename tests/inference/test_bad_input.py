"""Bad input to inference: clear errors, and zero-probability models answered as such."""

import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf import inference
from umrf.models import DiscreteMRF, Factor

CHAIN = DiscreteMRF(
    [2, 2, 2], [Factor((0, 1), jnp.zeros((2, 2))), Factor((1, 2), jnp.zeros((2, 2)))]
)
ALL_ZERO = DiscreteMRF(
    [2, 2, 2], [Factor((0, 1), jnp.full((2, 2), -jnp.inf)), Factor((1, 2), jnp.zeros((2, 2)))]
)
# Zero mass through hard zeros that exclude each other: x0 = 0 and x1 = 0 forced,
# but (0, 0) forbidden.
CONTRADICTION = DiscreteMRF(
    [2, 2],
    [
        Factor((0,), jnp.array([0.0, -jnp.inf])),
        Factor((1,), jnp.array([0.0, -jnp.inf])),
        Factor((0, 1), jnp.array([[-jnp.inf, 0.0], [0.0, 0.0]])),
    ],
)

CASES = {
    "BP of a non-MRF": (
        lambda: inference.loopy_belief_propagation({"a": 1}),
        TypeError,
        "DiscreteMRF",
    ),
    "BP zero iterations": (
        lambda: inference.loopy_belief_propagation(CHAIN, num_iters=0),
        ValueError,
        "num_iters",
    ),
    "BP damping one": (
        lambda: inference.loopy_belief_propagation(CHAIN, damping=1.0),
        ValueError,
        "damping",
    ),
    "BP unknown mode": (
        lambda: inference.loopy_belief_propagation(CHAIN, mode="min"),
        ValueError,
        "mode",
    ),
    "BP zero temperature": (
        lambda: inference.loopy_belief_propagation(CHAIN, temperature=0.0),
        ValueError,
        "temperature",
    ),
    "mean field of a lattice model": (
        lambda: inference.mean_field(umrf.models.ising((4, 4), 0.3)),
        TypeError,
        "to_discrete_mrf",
    ),
    "mean field negative damping": (
        lambda: inference.mean_field(CHAIN, damping=-0.1),
        ValueError,
        "damping",
    ),
    "exact inference of a non-MRF": (lambda: inference.log_partition([1, 2]), TypeError, "mrf"),
    "elimination order that repeats a variable": (
        lambda: inference.log_partition(CHAIN, order=(0, 0, 1)),
        ValueError,
        "order",
    ),
    "exact table too large": (
        lambda: inference.log_partition(
            DiscreteMRF([4] * 12, [Factor(tuple(range(12)), jnp.zeros((4,) * 12))]),
            max_table_size=1000,
        ),
        ValueError,
        "max_table_size",
    ),
    "enumeration too large": (
        lambda: inference.enumerate_joint(CHAIN, max_table_size=4),
        ValueError,
        "max_table_size",
    ),
    "independence with a negative tolerance": (
        lambda: inference.is_independent(CHAIN, 0, 2, 1, atol=-1.0),
        ValueError,
        "atol",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_raises_a_clear_error(case):
    fn, err, match = CASES[case]
    with pytest.raises(err, match=match):
        fn()


@pytest.mark.parametrize("model", [ALL_ZERO, CONTRADICTION], ids=["all_zero", "contradiction"])
def test_zero_probability_models_have_log_z_minus_infinity(model):
    assert float(inference.log_partition(model)) == -np.inf  # exact
    bp = inference.loopy_belief_propagation(model, num_iters=10)
    assert float(bp.log_partition) == -np.inf and not bool(bp.converged)
    assert np.isnan(np.asarray(bp.variables)).all()  # no distribution, not a plausible one
    mf = inference.mean_field(model, num_iters=5)
    assert float(mf.elbo) == -np.inf and not bool(mf.converged)


def test_models_with_mass_are_unaffected():
    bp = inference.loopy_belief_propagation(CHAIN, num_iters=10, damping=0.0)
    assert bool(bp.converged)
    np.testing.assert_allclose(float(bp.log_partition), 3 * np.log(2.0), rtol=1e-6)
    mf = inference.mean_field(CHAIN, num_iters=5)
    assert bool(mf.converged)
    np.testing.assert_allclose(float(mf.elbo), 3 * np.log(2.0), rtol=1e-6)
