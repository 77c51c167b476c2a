"""Static elimination plans and compiled programs: widths, orders, budgets, caching."""

import networkx as nx
import numpy as np
import pytest

import umrf
from umrf.inference import EliminationPlan, elimination_plan
from umrf.inference._program import build_program
from umrf.models import DiscreteMRF, Factor


def pairwise_mrf(g, card=2):
    n = g.number_of_nodes()
    return DiscreteMRF([card] * n, [Factor(e, np.zeros((card, card))) for e in g.edges])


@pytest.mark.parametrize("h,w", [(3, 3), (5, 5), (4, 7), (14, 14)])
def test_grid_width_equals_its_treewidth(h, w):
    plan = elimination_plan(pairwise_mrf(umrf.graphs.grid(h, w)))
    assert isinstance(plan, EliminationPlan)
    assert plan.treewidth == min(h, w)  # the treewidth of an h×w grid
    assert plan.max_table_size == 2 ** (min(h, w) + 1)
    assert sorted(plan.order) == list(range(h * w))


def test_tree_has_width_one_and_complete_graph_width_n_minus_one():
    tree = nx.balanced_tree(2, 4)
    assert elimination_plan(pairwise_mrf(tree)).treewidth == 1
    assert elimination_plan(pairwise_mrf(nx.complete_graph(6), card=3)).treewidth == 5
    assert elimination_plan(pairwise_mrf(nx.complete_graph(6), card=3)).max_table_size == 3**6


def test_plan_is_cached_per_structure_and_order_is_respected():
    mrf = pairwise_mrf(umrf.graphs.grid(4, 4))
    other = DiscreteMRF(mrf.cardinalities, [Factor(f.scope, np.ones((2, 2))) for f in mrf.factors])
    assert elimination_plan(mrf) is elimination_plan(other)
    order = tuple(range(15, -1, -1))
    assert elimination_plan(mrf, order).order == order
    with pytest.raises(ValueError, match="permutation"):
        elimination_plan(mrf, (0, 1, 2))
    with pytest.raises(TypeError, match="DiscreteMRF"):
        elimination_plan("grid")


def test_program_indices_stay_in_bounds_and_segments_are_few():
    mrf = pairwise_mrf(umrf.graphs.grid(14, 14))
    prog = build_program(mrf.cardinalities, mrf.scopes)
    assert len(prog.segments) <= 6
    for seg in prog.segments:
        big = seg.hb[:, :, None, None] + seg.mb[:, None, :, None] + seg.vb[:, None, None, :]
        small = seg.ms[:, :, :, None] + seg.vs[:, :, None, :]
        for idx in (big, small):
            assert idx.min() >= 0 and idx.max() < prog.memory_size
        assert np.all(seg.out_off + seg.pen_h.shape[1] * seg.pen_m.shape[1] <= prog.memory_size)
        # padding costs at most 2x the largest real message (2^14 entries for width 14)
        assert seg.hb.shape[1] * seg.mb.shape[1] <= 2 * 2**14
    # slots are reused: memory stays far below the sum of all intermediate tables
    assert prog.memory_size < prog.plan.total_size / 4


def test_mixed_cardinality_budget_estimate():
    g = nx.cycle_graph(5)
    mrf = DiscreteMRF([2, 3, 4, 5, 6], [Factor(e, np.zeros((2 + e[0], 2 + e[1]))) for e in g.edges])
    plan = elimination_plan(mrf)
    assert plan.treewidth == 2
    # brute-force check of the estimate: it is the largest union table of the plan's steps
    sizes = [int(np.prod([mrf.cardinalities[u] for u in s.union])) for s in plan.steps]
    assert plan.max_table_size == max(sizes)
    assert plan.total_size == sum(sizes)
    with pytest.raises(ValueError, match="max_table_size"):
        plan.check_budget(max(sizes) - 1)
    plan.check_budget(max(sizes))
