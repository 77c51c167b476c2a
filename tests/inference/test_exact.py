"""Exact inference (log Z, marginals, MAP) against brute-force enumeration and closed forms."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import umrf
from umrf.inference import (
    Marginals,
    elimination_plan,
    log_partition,
    log_partition_and_marginals,
    map_assignment,
    marginals,
)
from umrf.models import DiscreteMRF, Factor


def brute_log_joint(mrf):
    """Independent oracle: Σ_k θ_k(x_Ck) for every x by itertools, in float64."""
    cards = mrf.cardinalities
    tables = [np.asarray(f.log_potential, np.float64) for f in mrf.factors]
    out = np.zeros(cards, np.float64)
    for x in itertools.product(*(range(k) for k in cards)):
        out[x] = sum(
            t[tuple(x[v] for v in f.scope)] for t, f in zip(tables, mrf.factors, strict=True)
        )
    return out


def random_mrf(seed, n=7, num_factors=9, neg_frac=0.15, max_card=3):
    """Mixed cardinalities, unary/pairwise/3-way factors, a triangle, loops, -inf entries."""
    rng = np.random.default_rng(seed)
    cards = tuple(int(c) for c in rng.integers(1, max_card + 1, size=n))
    scopes = [(0, 1), (1, 2), (0, 2), (2, 3, 4), (4, 5), (5, 6), (6, 3)]
    while len(scopes) < num_factors:
        r = int(rng.integers(0, 4))
        scopes.append(tuple(int(v) for v in rng.choice(n, size=r, replace=False)))
    factors = []
    for s in scopes:
        t = rng.normal(size=tuple(cards[v] for v in s)) * 1.5
        t = np.where(rng.random(t.shape) < neg_frac, -np.inf, t)
        factors.append(Factor(s, t))
    return DiscreteMRF(cards, factors)


def live_models():
    out, seed = [], 0
    while len(out) < 4:
        m = random_mrf(seed)
        seed += 1
        if np.exp(brute_log_joint(m)).sum() > 0:
            out.append(m)
    return out


MODELS = live_models()


@pytest.mark.parametrize("k", range(len(MODELS)))
def test_log_z_marginals_map_equal_brute_force(k):
    mrf = MODELS[k]
    L = brute_log_joint(mrf)
    log_z = np.log(np.exp(L).sum())
    p = np.exp(L - log_z)
    n = mrf.num_variables
    np.testing.assert_allclose(float(log_partition(mrf)), log_z, rtol=1e-5, atol=1e-5)

    mg = marginals(mrf)
    assert isinstance(mg, Marginals)
    for i in range(n):
        want = p.sum(axis=tuple(j for j in range(n) if j != i))
        np.testing.assert_allclose(np.asarray(mg.variables[i]), want, atol=2e-6)
    for f, got in zip(mrf.factors, mg.factors, strict=True):
        rest = tuple(j for j in range(n) if j not in f.scope)
        want = np.transpose(p.sum(axis=rest), np.argsort(np.argsort(f.scope)))
        assert got.shape == f.log_potential.shape
        np.testing.assert_allclose(np.asarray(got), want, atol=2e-6)

    x = np.asarray(map_assignment(mrf))
    assert x.shape == (n,) and x.dtype == np.int32
    np.testing.assert_allclose(L[tuple(x)], L.max(), rtol=1e-6, atol=1e-5)
    if np.sum(L >= L.max() - 1e-6) == 1:
        assert tuple(x) == np.unravel_index(np.argmax(L), L.shape)


def test_any_explicit_order_gives_the_same_answer():
    mrf = MODELS[0]
    ref = float(log_partition(mrf))
    rng = np.random.default_rng(3)
    for _ in range(3):
        order = tuple(int(v) for v in rng.permutation(mrf.num_variables))
        np.testing.assert_allclose(float(log_partition(mrf, order=order)), ref, rtol=1e-5)
        assert elimination_plan(mrf, order).order == order


def transfer_matrix_grid(h, w, unary, horiz, vert):
    """log Z and variable marginals of a binary h×w grid by row transfer matrices (float64)."""
    states = np.array(list(itertools.product((0, 1), repeat=w)))  # (2^w, w)
    row = np.zeros((h, len(states)))
    for r in range(h):
        for c in range(w):
            row[r] += unary[r, c][states[:, c]]
        for c in range(w - 1):
            row[r] += horiz[r, c][states[:, c], states[:, c + 1]]
    trans = np.zeros((h - 1, len(states), len(states)))
    for r in range(h - 1):
        for c in range(w):
            trans[r] += vert[r, c][states[:, c][:, None], states[:, c][None, :]]
    fwd = [row[0]]
    for r in range(1, h):
        a = fwd[-1][:, None] + trans[r - 1]
        fwd.append(row[r] + np.logaddexp.reduce(a, axis=0))
    bwd = [np.zeros(len(states))]
    for r in range(h - 2, -1, -1):
        a = trans[r] + (row[r + 1] + bwd[0])[None, :]
        bwd.insert(0, np.logaddexp.reduce(a, axis=1))
    log_z = np.logaddexp.reduce(fwd[-1])
    marg = np.zeros((h, w, 2))
    for r in range(h):
        pr = np.exp(fwd[r] + bwd[r] - log_z)
        for c in range(w):
            marg[r, c, 1] = pr[states[:, c] == 1].sum()
            marg[r, c, 0] = pr[states[:, c] == 0].sum()
    return log_z, marg


def test_grid_matches_transfer_matrix():
    h, w = 7, 6
    rng = np.random.default_rng(11)
    unary = rng.normal(size=(h, w, 2))
    horiz = rng.normal(size=(h, w - 1, 2, 2))
    vert = rng.normal(size=(h - 1, w, 2, 2))
    factors = [Factor((r * w + c,), unary[r, c]) for r in range(h) for c in range(w)]
    factors += [
        Factor((r * w + c, r * w + c + 1), horiz[r, c]) for r in range(h) for c in range(w - 1)
    ]
    factors += [
        Factor((r * w + c, (r + 1) * w + c), vert[r, c]) for r in range(h - 1) for c in range(w)
    ]
    mrf = DiscreteMRF([2] * (h * w), factors, graph=umrf.graphs.grid(h, w))
    log_z, marg = transfer_matrix_grid(h, w, unary, horiz, vert)
    got_z, mg = log_partition_and_marginals(mrf)
    np.testing.assert_allclose(float(got_z), log_z, rtol=1e-5)
    np.testing.assert_allclose(float(log_partition(mrf)), log_z, rtol=1e-5)
    got = np.stack([np.asarray(v) for v in mg.variables]).reshape(h, w, 2)
    np.testing.assert_allclose(got, marg, atol=1e-5)
    x = np.asarray(map_assignment(mrf))
    # MAP by max-product transfer matrices
    states = np.array(list(itertools.product((0, 1), repeat=w)))
    score = float(-mrf.energy(jnp.asarray(x)))
    best = -np.inf
    row_best = None
    for r in range(h):
        rs = sum(unary[r, c][states[:, c]] for c in range(w))
        rs = rs + sum(horiz[r, c][states[:, c], states[:, c + 1]] for c in range(w - 1))
        if r == 0:
            row_best = rs
        else:
            tr = sum(vert[r - 1, c][states[:, c][:, None], states[:, c][None, :]] for c in range(w))
            row_best = rs + np.max(row_best[:, None] + tr, axis=0)
    best = row_best.max()
    np.testing.assert_allclose(score, best, rtol=1e-5)


def test_long_chain_matches_matrix_product():
    n = 60
    rng = np.random.default_rng(5)
    pair = rng.normal(size=(n - 1, 3, 3))
    mrf = DiscreteMRF([3] * n, [Factor((i, i + 1), pair[i]) for i in range(n - 1)])
    v = np.zeros(3)
    for i in range(n - 1):
        v = np.logaddexp.reduce(v[:, None] + pair[i], axis=0)
    np.testing.assert_allclose(float(log_partition(mrf)), np.logaddexp.reduce(v), rtol=1e-5)


def test_hard_zeros_are_exact_and_nan_free():
    # x0 is forced to 0 by a unary hard zero; factor (0, 1) has an entire -inf slice at x0 = 1.
    t01 = np.array([[0.3, -0.2, 1.0], [-np.inf, -np.inf, -np.inf]])
    t12 = np.array([[0.5, -np.inf], [-np.inf, 0.1], [0.2, 0.2]])
    mrf = DiscreteMRF(
        [2, 3, 2],
        [Factor((0,), [0.0, -np.inf]), Factor((0, 1), t01), Factor((1, 2), t12)],
    )
    L = brute_log_joint(mrf)
    log_z = np.log(np.exp(L).sum())
    got_z, mg = log_partition_and_marginals(mrf)
    np.testing.assert_allclose(float(got_z), log_z, rtol=1e-6)
    assert float(mg.variables[0][1]) == 0.0
    assert float(mg.factors[1][1].sum()) == 0.0
    for t in (*mg.variables, *mg.factors):
        assert np.all(np.isfinite(np.asarray(t)))
    g = jax.grad(log_partition)(mrf)
    for f in g.factors:
        assert np.all(np.isfinite(np.asarray(f.log_potential)))
    x = np.asarray(map_assignment(mrf))
    assert np.isfinite(L[tuple(x)]) and L[tuple(x)] == pytest.approx(L.max(), abs=1e-6)


def test_zero_partition_function_gives_minus_inf_and_zero_marginals():
    # two constraints that contradict each other: Z = 0
    mrf = DiscreteMRF(
        [2, 2],
        [Factor((0,), [0.0, -np.inf]), Factor((0, 1), [[-np.inf, -np.inf], [0.0, 0.0]])],
    )
    assert float(log_partition(mrf)) == -np.inf
    mg = marginals(mrf)
    for t in (*mg.variables, *mg.factors):
        np.testing.assert_array_equal(np.asarray(t), 0.0)
    x = np.asarray(map_assignment(mrf))
    assert x.shape == (2,)


def test_variables_without_factors_and_constant_factors():
    mrf = DiscreteMRF([3, 2, 4], [Factor((1,), [0.0, np.log(3.0)]), Factor((), 0.5)])
    # Z = 3 * (1 + 3) * 4 * e^0.5
    np.testing.assert_allclose(float(log_partition(mrf)), np.log(48.0) + 0.5, rtol=1e-6)
    mg = marginals(mrf)
    np.testing.assert_allclose(np.asarray(mg.variables[0]), np.full(3, 1 / 3), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(mg.variables[1]), [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(mg.factors[1]), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(map_assignment(mrf)), [0, 1, 0])
    empty = DiscreteMRF([], [])
    assert float(log_partition(empty)) == 0.0


def test_gradient_of_log_z_is_the_factor_marginal_and_passes_numerical_check():
    mrf = random_mrf(100, neg_frac=0.0)
    g = jax.grad(log_partition)(mrf)
    mg = marginals(mrf)
    for a, b in zip(g.factors, mg.factors, strict=True):
        np.testing.assert_allclose(np.asarray(a.log_potential), np.asarray(b), atol=1e-6)
    tables = [f.log_potential for f in mrf.factors]

    def fn(*ts):
        return log_partition(jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(mrf), ts))

    check_grads(fn, tables, order=1, modes=["rev"], atol=2e-2, rtol=2e-2, eps=1e-2)

    # second derivative: d p(x_0 = 0) / d θ_unary is a covariance (finite, symmetric)
    def m0(ts):
        m = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(mrf), ts)
        return marginals(m).variables[0][0]

    h = jax.grad(m0)(tables)
    assert all(np.all(np.isfinite(np.asarray(t))) for t in h)


def test_jit_vmap_and_no_recompile_on_new_parameters():
    mrf = MODELS[1]
    treedef = jax.tree_util.tree_structure(mrf)
    rng = np.random.default_rng(0)
    batch = [
        jax.tree_util.tree_unflatten(
            treedef,
            [jnp.asarray(rng.normal(size=f.log_potential.shape), jnp.float32) for f in mrf.factors],
        )
        for _ in range(4)
    ]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *batch)
    want_z = [np.log(np.exp(brute_log_joint(m)).sum()) for m in batch]
    np.testing.assert_allclose(np.asarray(jax.vmap(log_partition)(stacked)), want_z, rtol=1e-5)
    vm = jax.vmap(marginals)(stacked)
    for b, m in enumerate(batch):
        ref = marginals(m)
        np.testing.assert_allclose(
            np.asarray(vm.variables[2][b]), np.asarray(ref.variables[2]), atol=1e-6
        )
    vx = jax.vmap(map_assignment)(stacked)
    assert vx.shape == (4, mrf.num_variables)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def all_three(m):
        return log_partition(m), marginals(m), map_assignment(m)

    for m, z in zip(batch, want_z, strict=True):
        out = all_three(m)
        np.testing.assert_allclose(float(out[0]), z, rtol=1e-5)


def test_memory_budget_error_reports_the_estimate():
    g = umrf.graphs.grid(6, 6)
    mrf = DiscreteMRF([3] * 36, [Factor(e, np.zeros((3, 3))) for e in g.edges])
    plan = elimination_plan(mrf)
    assert plan.max_table_size == 3**7  # induced width 6 of the row sweep
    with pytest.raises(ValueError, match=r"2,187 entries.*max_table_size"):
        log_partition(mrf, max_table_size=1000)
    with pytest.raises(ValueError, match="max_table_size"):
        marginals(mrf, max_table_size=1000)
    with pytest.raises(ValueError, match="max_table_size"):
        map_assignment(mrf, max_table_size=1000)
    np.testing.assert_allclose(
        float(log_partition(mrf, max_table_size=3**7)), 36 * np.log(3.0), rtol=1e-6
    )


def test_bad_inputs():
    with pytest.raises(TypeError, match="DiscreteMRF"):
        log_partition({"not": "an mrf"})
    with pytest.raises(TypeError, match="DiscreteMRF"):
        marginals(None)
    with pytest.raises(ValueError, match="permutation"):
        log_partition(MODELS[0], order=(0, 0, 1, 2, 3, 4, 5))
