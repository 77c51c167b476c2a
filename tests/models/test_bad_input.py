"""Bad input to the models: a clear error naming the argument, or NaN under tracing."""

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from flax import nnx

import umrf
from umrf.models import DiscreteMRF, Factor

MRF = DiscreteMRF([2, 3, 2], [Factor((0, 1), jnp.zeros((2, 3))), Factor((1, 2), jnp.zeros((3, 2)))])
ISING = umrf.models.ising((4, 4), 0.3)
POTTS = umrf.models.potts((4, 4), 3, 0.5)
GAUSS = umrf.models.Gaussian(jnp.zeros(2), jnp.eye(2))
KEY = jax.random.key(0)

CASES = {
    # factors and discrete MRFs
    "scope repeats a variable": (lambda: Factor((0, 0), jnp.zeros((2, 2))), ValueError, "scope"),
    "negative variable": (lambda: Factor((-1,), jnp.zeros(2)), ValueError, "scope"),
    "table rank differs from the scope": (
        lambda: Factor((0, 1), jnp.zeros(2)),
        ValueError,
        "log_potential",
    ),
    "NaN log-potential": (lambda: Factor((0,), jnp.array([0.0, jnp.nan])), ValueError, "NaN"),
    "+inf log-potential": (lambda: Factor((0,), jnp.array([0.0, jnp.inf])), ValueError, "inf"),
    "negative potential": (
        lambda: Factor.from_potential((0,), [1.0, -1.0]),
        ValueError,
        "potential",
    ),
    "cardinalities as one int": (lambda: DiscreteMRF(3, []), TypeError, "cardinalities"),
    "zero cardinality": (lambda: DiscreteMRF([2, 0], []), ValueError, "cardinalities"),
    "scope beyond the variables": (
        lambda: DiscreteMRF([2], [Factor((0, 1), jnp.zeros((2, 2)))]),
        ValueError,
        "factors",
    ),
    "table of the wrong shape": (
        lambda: DiscreteMRF([2, 3], [Factor((0, 1), jnp.zeros((2, 2)))]),
        ValueError,
        "factors",
    ),
    "scope that is not a clique of the graph": (
        lambda: DiscreteMRF([2, 2], [Factor((0, 1), jnp.zeros((2, 2)))], graph=nx.empty_graph(2)),
        ValueError,
        "clique",
    ),
    "directed graph": (
        lambda: DiscreteMRF([2, 2], [], graph=nx.DiGraph([(0, 1)])),
        TypeError,
        "graph",
    ),
    "energy of a state outside the model": (
        lambda: MRF.energy(jnp.array([0, 3, 1])),
        ValueError,
        r"`x\[1\]`",
    ),
    "energy of the wrong length": (lambda: MRF.energy(jnp.array([0, 1])), ValueError, "`x`"),
    "energy of float states": (lambda: MRF.energy(jnp.zeros(3)), TypeError, "`x`"),
    "conditioning on an unknown variable": (lambda: MRF.condition({7: 0}), ValueError, "evidence"),
    "conditioning outside the states": (lambda: MRF.condition({1: 3}), ValueError, "evidence"),
    # lattices
    "periodic lattice of odd side": (
        lambda: umrf.models.ising((3, 4), 0.3),
        ValueError,
        "periodic",
    ),
    "field of the wrong shape": (
        lambda: umrf.models.ising((4, 4), 0.3, jnp.zeros((3, 3))),
        ValueError,
        "field",
    ),
    "NaN coupling": (lambda: umrf.models.ising((4, 4), jnp.nan), ValueError, "coupling"),
    "Ising energy of zeros": (lambda: ISING.energy(jnp.zeros((4, 4), jnp.int8)), ValueError, "`x`"),
    "Potts energy of state q": (lambda: POTTS.energy(jnp.full((4, 4), 3)), ValueError, "`x`"),
    "Potts with one state": (lambda: umrf.models.potts((4, 4), 1), ValueError, "num_states"),
    # Gaussians
    "precision that is not positive definite": (
        lambda: umrf.models.Gaussian(jnp.zeros(2), -jnp.eye(2)),
        ValueError,
        "precision",
    ),
    "mean and precision disagree": (
        lambda: umrf.models.Gaussian(jnp.zeros(3), jnp.eye(2)),
        ValueError,
        "mean",
    ),
    "Gaussian energy of the wrong dimension": (
        lambda: GAUSS.energy(jnp.zeros(3)),
        ValueError,
        "`x`",
    ),
    "temperature zero": (lambda: GAUSS.log_partition(temperature=0.0), ValueError, "temperature"),
    "mixture weights that do not sum to one": (
        lambda: umrf.models.GaussianMixture.isotropic([0.5, 0.6], [[0.0], [1.0]], 1.0),
        ValueError,
        "weights",
    ),
    "Gaussian MRF precision off the graph": (
        lambda: umrf.models.GaussianMRF(nx.empty_graph(2), jnp.array([[1.0, 0.5], [0.5, 1.0]])),
        ValueError,
        "precision",
    ),
    # Bayesian networks
    "cyclic 'DAG'": (
        lambda: umrf.models.from_bayesian_network(nx.DiGraph([(0, 1), (1, 0)]), {}),
        ValueError,
        "cycle",
    ),
    "CPD that does not sum to one": (
        lambda: umrf.models.from_bayesian_network(
            nx.DiGraph([(0, 1)]), {0: [0.3, 0.3], 1: [[1.0, 0.0], [0.0, 1.0]]}
        ),
        ValueError,
        "cpds",
    ),
    # toy data and neural adapters
    "toy data of zero points": (lambda: umrf.models.rings(KEY, 0), ValueError, "`n`"),
    "negative noise": (lambda: umrf.models.two_moons(KEY, 10, noise=-0.1), ValueError, "noise"),
    "adapter of a non-module": (lambda: umrf.models.nnx_energy(lambda x: x), TypeError, "module"),
    "MLP with no hidden layer": (
        lambda: umrf.models.MLPEnergy(2, (), rngs=nnx.Rngs(0)),
        ValueError,
        "hidden",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_raises_a_clear_error(case):
    fn, err, match = CASES[case]
    with pytest.raises(err, match=match):
        fn()


def test_traced_states_outside_the_model_give_nan_energies():
    states = jnp.array([[0, 3, 1], [0, 2, 1]])
    e = jax.jit(jax.vmap(MRF.energy))(states)
    assert np.isnan(float(e[0])) and np.isfinite(float(e[1]))
    spins = jnp.stack([jnp.zeros((4, 4), jnp.int8), jnp.ones((4, 4), jnp.int8)])
    e = jax.vmap(ISING.energy)(spins)
    assert np.isnan(float(e[0])) and np.isfinite(float(e[1]))
    labels = jnp.stack([jnp.full((4, 4), 3), jnp.zeros((4, 4), jnp.int32)])
    e = jax.jit(jax.vmap(POTTS.energy))(labels)
    assert np.isnan(float(e[0])) and np.isfinite(float(e[1]))
