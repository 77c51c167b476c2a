"""grid: row-major labels, edge counts, periodic wrap, bad input."""

import pytest

from umrf.graphs import grid


@pytest.mark.parametrize("h,w", [(1, 1), (1, 5), (3, 4), (6, 2)])
def test_open_grid(h, w):
    g = grid(h, w)
    assert sorted(g.nodes) == list(range(h * w))
    assert g.number_of_edges() == h * (w - 1) + w * (h - 1)
    for v in g:
        r, c = divmod(v, w)
        assert g.nodes[v]["pos"] == (c, -r)
        want = {
            r2 * w + c2
            for r2, c2 in [(r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)]
            if 0 <= r2 < h and 0 <= c2 < w
        }
        assert set(g.adj[v]) == want


def test_periodic_grid():
    g = grid(3, 4, periodic=True)
    assert g.number_of_edges() == 2 * 12
    assert all(d == 4 for _, d in g.degree)
    assert g.has_edge(3, 0) and g.has_edge(8, 0)
    assert grid(2, 2, periodic=True).number_of_edges() == 4  # no duplicate wrap edges
    assert grid(1, 3, periodic=True).number_of_edges() == 3  # no self-loops
    assert not any(u == v for u, v in grid(1, 1, periodic=True).edges)


def test_bad_inputs():
    with pytest.raises(ValueError, match="h"):
        grid(0, 3)
    with pytest.raises(TypeError, match="w"):
        grid(3, 2.5)
    with pytest.raises(TypeError, match="periodic"):
        grid(3, 3, periodic="yes")
