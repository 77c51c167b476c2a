"""from_bayesian_network: same joint as the directed model, Z = 1, clear errors."""

import itertools

import networkx as nx
import numpy as np
import pytest

import umrf
from umrf.inference import enumerate_joint, log_partition, marginals
from umrf.models import from_bayesian_network


def random_bn(seed, n=6):
    rng = np.random.default_rng(seed)
    dag = nx.DiGraph()
    dag.add_nodes_from(range(n))
    perm = rng.permutation(n)  # a random topological order
    for i in range(n):
        for j in range(i + 1, n):
            if rng.random() < 0.4:
                dag.add_edge(int(perm[i]), int(perm[j]))
    cards = [int(c) for c in rng.integers(2, 4, size=n)]
    cpds = {}
    for v in range(n):
        pa = sorted(dag.predecessors(v))
        t = rng.dirichlet(np.ones(cards[v]), size=tuple(cards[p] for p in pa))
        t = np.where(rng.random(t.shape) < 0.1, 0.0, t)
        t = t / t.sum(axis=-1, keepdims=True)
        cpds[v] = t
    return dag, cards, cpds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reproduces_the_directed_joint(seed):
    dag, cards, cpds = random_bn(seed)
    mrf = from_bayesian_network(dag, cpds)
    n = len(cards)
    want = np.zeros(cards)
    for x in itertools.product(*(range(k) for k in cards)):
        pr = 1.0
        for v in range(n):
            pa = sorted(dag.predecessors(v))
            pr *= cpds[v][tuple(x[p] for p in pa) + (x[v],)]
        want[x] = pr
    np.testing.assert_allclose(np.asarray(enumerate_joint(mrf)), want, atol=1e-6)
    assert float(log_partition(mrf)) == pytest.approx(0.0, abs=1e-5)
    assert {frozenset(e) for e in mrf.graph.edges} == {
        frozenset(e) for e in nx.moral_graph(dag).edges
    }
    # the root marginals are the root CPDs
    mg = marginals(mrf)
    for v in range(n):
        if dag.in_degree(v) == 0:
            np.testing.assert_allclose(np.asarray(mg.variables[v]), cpds[v], atol=1e-5)


def test_sprinkler_posterior():
    # cloudy -> sprinkler, cloudy -> rain, sprinkler -> wet, rain -> wet
    dag = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 3)])
    cpds = {
        0: [0.5, 0.5],
        1: [[0.5, 0.5], [0.9, 0.1]],
        2: [[0.8, 0.2], [0.2, 0.8]],
        3: [[[1.0, 0.0], [0.1, 0.9]], [[0.1, 0.9], [0.01, 0.99]]],
    }
    mrf = from_bayesian_network(dag, cpds)
    posterior = enumerate_joint(mrf.condition({3: 1}))  # p(c, s, r | wet)
    p_rain = float(np.asarray(posterior).sum(axis=(0, 1))[1])
    assert p_rain == pytest.approx(0.7079, abs=1e-4)  # the textbook value


def test_errors():
    with pytest.raises(ValueError, match="cycle"):
        from_bayesian_network(nx.DiGraph([(0, 1), (1, 0)]), {0: [[0.5, 0.5]] * 2, 1: [[1, 0]] * 2})
    dag = nx.DiGraph([(0, 1)])
    good = {0: [0.3, 0.7], 1: [[0.9, 0.1], [0.2, 0.8]]}
    with pytest.raises(ValueError, match="sum to one"):
        from_bayesian_network(dag, {0: [0.3, 0.6], 1: good[1]})
    with pytest.raises(ValueError, match=">= 0"):
        from_bayesian_network(dag, {0: [1.2, -0.2], 1: good[1]})
    with pytest.raises(ValueError, match="missing"):
        from_bayesian_network(dag, {0: good[0]})
    with pytest.raises(ValueError, match="unknown"):
        from_bayesian_network(dag, {**good, 5: [1.0]})
    with pytest.raises(ValueError, match="needs shape"):
        from_bayesian_network(dag, {0: good[0], 1: [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]})
    with pytest.raises(ValueError, match="0..1"):
        from_bayesian_network(nx.DiGraph([("a", "b")]), {"a": [1.0], "b": [[1.0]]})
    with pytest.raises(TypeError, match="directed"):
        from_bayesian_network(nx.Graph([(0, 1)]), good)
    with pytest.raises(TypeError, match="mapping"):
        from_bayesian_network(dag, [good[0], good[1]])
    assert umrf.models.from_bayesian_network is from_bayesian_network
