"""Gaussian MRF on a graph: sparsity validated, sparse energy = dense energy, exact log Z."""

import math

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

import umrf


def grid_precision(graph, coupling=-0.2, diag=1.5):
    nodes = list(graph.nodes)
    idx = {v: i for i, v in enumerate(nodes)}
    lam = np.eye(len(nodes)) * diag
    for u, v in graph.edges:
        lam[idx[u], idx[v]] = lam[idx[v], idx[u]] = coupling
    return jnp.asarray(lam, jnp.float32)


def test_sparse_energy_equals_dense_quadratic_form_and_log_z_closed_form():
    g = nx.grid_2d_graph(3, 4)
    lam = grid_precision(g)
    mean = jnp.linspace(-1, 1, 12)
    mrf = umrf.models.GaussianMRF(g, lam, mean)
    assert len(mrf.edges) == g.number_of_edges() == 17
    np.testing.assert_allclose(mrf.precision, lam)
    x = jax.random.normal(jax.random.key(0), (12,))
    r = x - mean
    assert float(mrf.energy(x)) == pytest.approx(float(0.5 * r @ lam @ r), rel=1e-5)
    sign, logdet = np.linalg.slogdet(np.asarray(lam, np.float64))
    assert sign > 0
    closed = 6 * math.log(2 * math.pi) - 0.5 * logdet
    assert float(mrf.log_partition()) == pytest.approx(closed, rel=1e-5)
    assert float(mrf.log_partition(temperature=2.0)) == pytest.approx(
        closed + 6 * math.log(2.0), rel=1e-5
    )


def test_log_z_matches_numeric_integration_on_a_3_node_path():
    g = nx.path_graph(3)
    lam = jnp.array([[1.0, 0.4, 0.0], [0.4, 1.2, -0.3], [0.0, -0.3, 0.8]])
    mrf = umrf.models.GaussianMRF(g, lam)
    grid = np.linspace(-7, 7, 141)
    pts = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    e = np.asarray(jax.vmap(mrf.energy)(jnp.asarray(pts, jnp.float32)), np.float64)
    h = grid[1] - grid[0]
    assert float(mrf.log_partition()) == pytest.approx(math.log(np.exp(-e).sum() * h**3), abs=1e-3)


def test_conditional_independence_and_samples():
    # Path 0 - 1 - 2: x0 ⊥ x2 | x1, so the partial correlation (precision entry) is 0 while
    # the marginal covariance is not.
    g = nx.path_graph(3)
    lam = jnp.array([[1.0, -0.45, 0.0], [-0.45, 1.0, -0.45], [0.0, -0.45, 1.0]])
    mrf = umrf.models.GaussianMRF(g, lam)
    x = np.asarray(mrf.sample(jax.random.key(0), (100000,)))
    cov = np.cov(x.T)
    assert abs(cov[0, 2]) > 0.3
    assert abs(np.linalg.inv(cov)[0, 2]) < 0.02
    np.testing.assert_allclose(cov, np.linalg.inv(np.asarray(lam)), atol=0.04)


def test_pytree_grad_and_sampler_on_the_mrf():
    g = nx.cycle_graph(5)
    mrf = umrf.models.GaussianMRF(g, grid_precision(g, -0.3, 1.0))
    leaves = jax.tree_util.tree_leaves(mrf)
    assert [leaf.shape for leaf in leaves] == [(5,), (5,), (5,)]
    # d log Z / d Λ_ij (edge weight, counted twice) = -(Λ⁻¹)_ij
    grad = jax.grad(lambda m: m.log_partition())(mrf)
    cov = np.linalg.inv(np.asarray(mrf.precision))
    np.testing.assert_allclose(grad.edge_weights, [-cov[i, j] for i, j in mrf.edges], rtol=1e-4)
    np.testing.assert_allclose(grad.diagonal, -0.5 * np.diag(cov), rtol=1e-4)
    alg = umrf.samplers.mala(lambda m, x: m.energy(x), step_size=0.4)
    x0 = mrf.sample(jax.random.key(1), (512,))
    _, trace = umrf.sample_chains(alg, jax.random.key(2), mrf, x0, num_steps=100, thin=2)
    emp = np.cov(np.asarray(trace.position).reshape(-1, 5).T)
    np.testing.assert_allclose(emp, cov, atol=0.12)


def test_gaussian_mrf_bad_inputs():
    g = nx.path_graph(3)
    dense = jnp.array([[1.0, 0.2, 0.1], [0.2, 1.0, 0.2], [0.1, 0.2, 1.0]])
    with pytest.raises(ValueError, match="not an edge"):
        umrf.models.GaussianMRF(g, dense)
    with pytest.raises(ValueError, match="shape"):
        umrf.models.GaussianMRF(g, jnp.eye(4))
    with pytest.raises(TypeError, match="undirected"):
        umrf.models.GaussianMRF(nx.DiGraph([(0, 1)]), jnp.eye(2))
    loops = nx.path_graph(2)
    loops.add_edge(0, 0)
    with pytest.raises(ValueError, match="self-loops"):
        umrf.models.GaussianMRF(loops, jnp.eye(2))
    with pytest.raises(ValueError, match="positive definite"):
        umrf.models.GaussianMRF(g, jnp.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="mean"):
        umrf.models.GaussianMRF(g, jnp.eye(3), mean=jnp.zeros(2))
