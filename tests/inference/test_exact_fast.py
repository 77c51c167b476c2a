"""The probability-space engine (method "auto"/"scaled"): exactness, the guard, jit/vmap/grad.

Every answer is checked against an independent oracle written here: brute-force
enumeration (float64) for small models and a row-by-row transfer-matrix sweep
(float64) for grids. The guard cases show (a) the guard trips, (b) the
guard-less "scaled" variant is wrong there, (c) "auto" is still exact.
"""

import itertools
import math
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.inference import (
    log_partition,
    log_partition_and_marginals,
    map_assignment,
    marginals,
)
from umrf.inference._eager import window_forward, window_value_and_grad
from umrf.inference._exact import _compiled, _key, window_for
from umrf.inference._scaled import flat_layout, flatten_tables, scaled_log_partition
from umrf.models import DiscreteMRF, Factor


# --- oracles ---------------------------------------------------------------------------------
def brute(mrf):
    """(log Z, factor marginals, variable marginals, log-joint table) by enumeration, float64."""
    cards = mrf.cardinalities
    n = len(cards)
    L = np.zeros(cards)
    for f in mrf.factors:
        t = np.asarray(f.log_potential, np.float64)
        order = np.argsort(f.scope)
        shape = [cards[v] if v in f.scope else 1 for v in range(n)]
        L = L + np.reshape(np.transpose(t, order), shape)
    with np.errstate(divide="ignore"):
        log_z = np.log(np.exp(L - L.max()).sum()) + L.max() if np.isfinite(L.max()) else -np.inf
    p = np.exp(L - log_z) if np.isfinite(log_z) else np.zeros_like(L)
    fm = []
    for f in mrf.factors:
        rest = tuple(j for j in range(n) if j not in f.scope)
        fm.append(np.transpose(p.sum(axis=rest), np.argsort(np.argsort(f.scope))))
    vm = [p.sum(axis=tuple(j for j in range(n) if j != i)) for i in range(n)]
    return log_z, fm, vm, L


def grid_mrf(h, w, seed=0, scale=1.0, card=2):
    rng = np.random.default_rng(seed)

    def draw(*shape):  # float32 numbers (the tables' dtype), kept as float64 for the oracles
        return (rng.normal(size=shape) * scale).astype(np.float32).astype(np.float64)

    unary = draw(h, w, card)
    horiz = draw(h, w - 1, card, card)
    vert = draw(h - 1, w, card, card)
    fs = [Factor((r * w + c,), unary[r, c]) for r in range(h) for c in range(w)]
    fs += [Factor((r * w + c, r * w + c + 1), horiz[r, c]) for r in range(h) for c in range(w - 1)]
    fs += [Factor((r * w + c, (r + 1) * w + c), vert[r, c]) for r in range(h - 1) for c in range(w)]
    return DiscreteMRF([card] * (h * w), fs, graph=umrf.graphs.grid(h, w)), (unary, horiz, vert)


def transfer_matrix_sweep(h, w, unary, horiz, vert):
    """log Z and p(x_rc) of a binary h×w grid by a row-by-row transfer sweep (float64).

    The state is one whole row (2^w entries). Advancing a row applies the
    vertical couplings one column at a time (a 2×2 operator on one axis) and
    then the new row's unaries and horizontal couplings (a diagonal), with
    renormalisation per row; a backward sweep gives the row marginals.
    """
    states = np.array(list(itertools.product((0, 1), repeat=w)), np.int8)  # (2^w, w)
    row_log = np.zeros((h, 2**w))
    for r in range(h):
        for c in range(w):
            row_log[r] += unary[r, c][states[:, c]]
        for c in range(w - 1):
            row_log[r] += horiz[r, c][states[:, c], states[:, c + 1]]

    def vertical(v, r, transpose):
        for c in range(w):
            m = np.exp(vert[r, c] - vert[r, c].max())
            m = m.T if transpose else m
            x = v.reshape(2**c, 2, -1)
            out = np.empty_like(x)
            out[:, 0] = x[:, 0] * m[0, 0] + x[:, 1] * m[1, 0]
            out[:, 1] = x[:, 0] * m[0, 1] + x[:, 1] * m[1, 1]
            v = out.reshape(-1)
        return v, vert[r].max(axis=(1, 2)).sum()

    fwd, shift_f = [], []
    v, s = np.exp(row_log[0] - row_log[0].max()), row_log[0].max()
    for r in range(h):
        if r:
            v, vs = vertical(v, r - 1, False)
            v = v * np.exp(row_log[r] - row_log[r].max())
            s += vs + row_log[r].max()
        n = v.sum()
        v, s = v / n, s + np.log(n)
        fwd.append(v)
        shift_f.append(s)
    log_z = shift_f[-1]
    marg = np.zeros((h, w, 2))
    b = np.ones(2**w)
    for r in range(h - 1, -1, -1):
        if r < h - 1:
            u = b * np.exp(row_log[r + 1] - row_log[r + 1].max())
            b, _ = vertical(u, r, True)
            b = b / b.sum()
        p = fwd[r] * b
        p = p / p.sum()
        for c in range(w):
            marg[r, c, 1] = p[states[:, c] == 1].sum()
        marg[r, :, 0] = 1.0 - marg[r, :, 1]
    return log_z, marg


def assert_matches(mrf, log_z, mg, *, atol=2e-5, rtol=1e-5):
    want_z, fm, vm, _ = brute(mrf)
    if np.isfinite(want_z):
        np.testing.assert_allclose(float(log_z), want_z, rtol=rtol, atol=atol)
    else:
        assert float(log_z) == -np.inf
    for got, want in zip(mg.factors, fm, strict=True):
        np.testing.assert_allclose(np.asarray(got), want, atol=atol)
    for got, want in zip(mg.variables, vm, strict=True):
        np.testing.assert_allclose(np.asarray(got), want, atol=atol)


# --- exactness on banded structures ---------------------------------------------------------
@pytest.mark.parametrize("h,w,card", [(3, 4, 2), (4, 3, 2), (2, 6, 2), (3, 3, 3), (1, 7, 2)])
def test_grids_equal_brute_force_eagerly_and_compiled(h, w, card):
    mrf, _ = grid_mrf(h, w, seed=h * 10 + w, card=card)
    prog = window_for(*_key(mrf, None))
    assert prog is not None and prog.uniform  # the probability-space engine is the one used
    assert_matches(mrf, *log_partition_and_marginals(mrf))
    assert_matches(mrf, *jax.jit(log_partition_and_marginals)(mrf))
    np.testing.assert_allclose(float(log_partition(mrf)), brute(mrf)[0], rtol=1e-5)
    np.testing.assert_allclose(float(jax.jit(log_partition)(mrf)), brute(mrf)[0], rtol=1e-5)


def test_mixed_cardinalities_three_way_factors_and_odd_block_counts():
    rng = np.random.default_rng(3)
    cards = [2, 3, 1, 2, 4, 2, 3, 2, 2]
    scopes = [(0, 1), (1, 2, 3), (3, 4), (2, 4, 5), (5, 6), (6, 7), (7, 8), (0,), (8,), ()]
    mrf = DiscreteMRF(
        cards, [Factor(s, rng.normal(size=tuple(cards[v] for v in s))) for s in scopes]
    )
    assert window_for(*_key(mrf, None)) is not None
    assert_matches(mrf, *log_partition_and_marginals(mrf))
    assert_matches(mrf, *log_partition_and_marginals(mrf, method="scaled"))
    # mixed cardinalities: under jit the log-space engine runs (blocks differ in shape)
    assert _compiled(_key(mrf, None), "auto") is None
    assert_matches(mrf, *jax.jit(log_partition_and_marginals)(mrf))


@pytest.mark.parametrize("block", [1, 2, 3, 5])
@pytest.mark.parametrize("checkpoints", [False, True])
def test_every_block_size_is_exact(block, checkpoints, monkeypatch):
    """Also with the reverse pass recomputing windows from checkpoints (as on large grids)."""
    from umrf.inference import _eager
    from umrf.inference._window import build_window_program

    if checkpoints:
        monkeypatch.setattr(_eager, "KEEP_ALL_BYTES", 0)

    mrf, _ = grid_mrf(3, 4, seed=block)
    prog = build_window_program(mrf.cardinalities, mrf.scopes, tuple(range(12)), block)
    assert prog is not None and prog.block == block
    thetas = [np.asarray(f.log_potential) for f in mrf.factors]
    want_z, fm, _, _ = brute(mrf)
    for dt in (np.float32, np.float64):
        log_z, grads, trusted = window_value_and_grad(prog, thetas, dt)
        assert trusted
        np.testing.assert_allclose(log_z, want_z, rtol=1e-6 if dt == np.float32 else 1e-12)
        for g, want in zip(grads, fm, strict=True):
            np.testing.assert_allclose(g, want, atol=1e-6 if dt == np.float32 else 1e-12)


def test_non_banded_structure_runs_eagerly_in_log_space():
    # a star of stars: min-fill is trivial, but every order has a wide window
    n_hub = 9
    edges = [(0, h) for h in range(1, n_hub + 1)]
    edges += [(h, n_hub + 3 * (h - 1) + j + 1) for h in range(1, n_hub + 1) for j in range(3)]
    n = 1 + n_hub + 3 * n_hub
    rng = np.random.default_rng(0)
    mrf = DiscreteMRF([2] * n, [Factor(e, rng.normal(size=(2, 2))) for e in edges])
    plan = umrf.inference.elimination_plan(mrf)
    assert plan.treewidth == 1
    # exact against the compiled log-space engine (too many configurations to enumerate)
    got_z, got = log_partition_and_marginals(mrf)
    ref_z, ref = log_partition_and_marginals(mrf, method="log")
    np.testing.assert_allclose(float(got_z), float(ref_z), rtol=1e-6)
    for a, b in zip(got.factors, ref.factors, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_hard_zeros_zero_partition_function_and_constant_factors_eagerly():
    t01 = np.array([[0.3, -0.2, 1.0], [-np.inf, -np.inf, -np.inf]])
    t12 = np.array([[0.5, -np.inf], [-np.inf, 0.1], [0.2, 0.2]])
    mrf = DiscreteMRF(
        [2, 3, 2, 2],
        [Factor((0,), [0.0, -np.inf]), Factor((0, 1), t01), Factor((1, 2), t12), Factor((), 0.7)],
    )
    assert_matches(mrf, *log_partition_and_marginals(mrf))
    dead = DiscreteMRF(
        [2, 2], [Factor((0,), [0.0, -np.inf]), Factor((0, 1), [[-np.inf, -np.inf], [0.0, 0.0]])]
    )
    z, mg = log_partition_and_marginals(dead)
    assert float(z) == -np.inf
    for t in (*mg.variables, *mg.factors):
        np.testing.assert_array_equal(np.asarray(t), 0.0)


# --- the guard ---------------------------------------------------------------------------------
def chain(n, unaries, coupling):
    fs = [Factor((v,), np.asarray(t, np.float64)) for v, t in unaries.items()]
    fs += [Factor((i, i + 1), coupling) for i in range(n - 1)]
    return DiscreteMRF([2] * n, fs)


HARD_EQUAL = np.array([[0.0, -np.inf], [-np.inf, 0.0]])


def guard_cases():
    # 1. Hard zeros remove the dominant configurations: x0 prefers 0 by e^s, the chain forces
    #    equality and the last variable forbids 0, so all mass is on the flushed all-ones state.
    # 2. No zeros, a dynamic range far beyond float32: x0 prefers 0 by 300 nats, strong
    #    equal-couplings, the last variable prefers 1 by 600 nats.
    n = 12
    strong = np.array([[0.0, -300.0], [-300.0, 0.0]])
    return {
        "hard_zero_200": chain(n, {0: [0.0, -200.0], n - 1: [-np.inf, 0.0]}, HARD_EQUAL),
        "hard_zero_1000": chain(n, {0: [0.0, -1000.0], n - 1: [-np.inf, 0.0]}, HARD_EQUAL),
        "range_300_600": chain(n, {0: [0.0, -300.0], n - 1: [-600.0, 0.0]}, strong),
    }


@pytest.mark.parametrize("name", list(guard_cases()))
def test_guard_trips_where_rescaling_loses_the_mass_and_auto_stays_exact(name):
    mrf = guard_cases()[name]
    want_z = brute(mrf)[0]
    assert np.isfinite(want_z)
    prog = window_for(*_key(mrf, None))
    thetas = [np.asarray(f.log_potential) for f in mrf.factors]
    # the guard trips in float32 (host) ...
    z32, trusted32, _ = window_forward(prog, thetas, np.float32)
    assert not trusted32
    # ... and in the compiled program
    layout = flat_layout(tuple(np.shape(t) for t in thetas))
    flat = flatten_tables([f.log_potential for f in mrf.factors], jnp.float32)
    _, trusted_c = jax.jit(lambda x: scaled_log_partition(prog, x, layout, guard=True))(flat)
    assert not bool(trusted_c)
    # the guard-less variant is wrong there (eager and compiled) ...
    for scaled in (
        log_partition(mrf, method="scaled"),
        jax.jit(lambda m: log_partition(m, method="scaled"))(mrf),
    ):
        assert not abs(float(scaled) - want_z) < 1.0
    # ... while "auto" is exact, eagerly and compiled, and so are its marginals
    np.testing.assert_allclose(float(log_partition(mrf)), want_z, rtol=1e-5)
    np.testing.assert_allclose(float(jax.jit(log_partition)(mrf)), want_z, rtol=1e-5)
    assert_matches(mrf, *log_partition_and_marginals(mrf), rtol=1e-5)
    assert_matches(mrf, *jax.jit(log_partition_and_marginals)(mrf), rtol=1e-5)


def test_float64_rescue_and_log_space_rescue_are_both_exercised():
    cases = guard_cases()
    thetas = {k: [np.asarray(f.log_potential) for f in m.factors] for k, m in cases.items()}
    prog = {k: window_for(*_key(m, None)) for k, m in cases.items()}
    # e^-200 fits float64: the host engine's float64 retry is trusted
    assert window_forward(prog["hard_zero_200"], thetas["hard_zero_200"], np.float64)[1]
    # e^-1000 does not: float64 trips too and the log-space engine answers
    assert not window_forward(prog["hard_zero_1000"], thetas["hard_zero_1000"], np.float64)[1]
    np.testing.assert_allclose(float(log_partition(cases["hard_zero_1000"])), -1000.0, rtol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_guard_stays_quiet_on_ordinary_grids(scale):
    mrf, _ = grid_mrf(10, 10, seed=4, scale=scale)
    prog = window_for(*_key(mrf, None))
    thetas = [np.asarray(f.log_potential) for f in mrf.factors]
    assert window_forward(prog, thetas, np.float32)[1]
    layout = flat_layout(tuple(np.shape(t) for t in thetas))
    flat = flatten_tables([f.log_potential for f in mrf.factors], jnp.float32)
    assert bool(jax.jit(lambda x: scaled_log_partition(prog, x, layout, guard=True)[1])(flat))


# --- transformations ----------------------------------------------------------------------------
def test_vmap_over_a_batch_with_one_member_that_trips_the_guard():
    mrf, _ = grid_mrf(3, 4, seed=1)
    treedef = jax.tree_util.tree_structure(mrf)
    tables = [f.log_potential for f in mrf.factors]
    factors = [1.0, 300.0, 0.5]  # x300: dynamic range far beyond float32
    batch = jax.tree_util.tree_unflatten(
        treedef, [jnp.stack([t * s for s in factors]) for t in tables]
    )
    members = [jax.tree_util.tree_unflatten(treedef, [t * s for t in tables]) for s in factors]
    want = [brute(m)[0] for m in members]
    np.testing.assert_allclose(np.asarray(jax.vmap(log_partition)(batch)), want, rtol=1e-5)
    vz, vm = jax.vmap(log_partition_and_marginals)(batch)
    for b, m in enumerate(members):
        _, fm, vmg, _ = brute(m)
        np.testing.assert_allclose(float(vz[b]), want[b], rtol=1e-5)
        for k in range(len(fm)):
            np.testing.assert_allclose(np.asarray(vm.factors[k][b]), fm[k], atol=2e-5)
        np.testing.assert_allclose(np.asarray(vm.variables[5][b]), vmg[5], atol=2e-5)


def test_nested_vmap_with_the_fallback():
    mrf, _ = grid_mrf(2, 3, seed=3)
    treedef = jax.tree_util.tree_structure(mrf)
    tables = [f.log_potential for f in mrf.factors]
    scales = np.array([[1.0, 400.0, 2.0], [500.0, 0.5, 1.5]])  # two batches of three
    batch = jax.tree_util.tree_unflatten(
        treedef, [jnp.asarray(scales.reshape(2, 3, *[1] * t.ndim) * np.asarray(t)) for t in tables]
    )
    got = np.asarray(jax.vmap(jax.vmap(log_partition))(batch))
    prog = window_for(*_key(mrf, None))
    for i, j in itertools.product(range(2), range(3)):
        m = jax.tree_util.tree_unflatten(treedef, [t * scales[i, j] for t in tables])
        np.testing.assert_allclose(got[i, j], brute(m)[0], rtol=1e-5)
        thetas = [np.asarray(f.log_potential) for f in m.factors]
        assert window_forward(prog, thetas, np.float32)[1] == (scales[i, j] < 100)


def test_grad_is_the_marginal_and_hessian_matches_the_log_space_engine():
    mrf, _ = grid_mrf(3, 4, seed=2)
    treedef = jax.tree_util.tree_structure(mrf)
    tables = [f.log_potential for f in mrf.factors]
    _, fm, _, _ = brute(mrf)
    g = jax.grad(log_partition)(mrf)
    for a, b in zip(g.factors, fm, strict=True):
        np.testing.assert_allclose(np.asarray(a.log_potential), b, atol=2e-6)

    def first_marginal(ts, method):
        m = jax.tree_util.tree_unflatten(treedef, ts)
        return marginals(m, method=method).variables[0][0]

    h_auto = jax.grad(first_marginal)(tables, "auto")
    h_log = jax.grad(first_marginal)(tables, "log")
    for a, b in zip(h_auto, h_log, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    # the derivative of a marginal is a covariance: check one entry by finite differences
    eps = 1e-2
    bumped = list(tables)
    bumped[0] = tables[0].at[1].add(eps)
    fd = (first_marginal(bumped, "log") - first_marginal(tables, "log")) / eps
    np.testing.assert_allclose(float(h_auto[0][1]), float(fd), atol=5e-3)


def test_no_recompile_on_new_parameters():
    mrf, _ = grid_mrf(4, 4, seed=0)
    treedef = jax.tree_util.tree_structure(mrf)
    rng = np.random.default_rng(1)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def both(m):
        return log_partition(m), marginals(m)

    for _ in range(3):
        m = jax.tree_util.tree_unflatten(
            treedef,
            [jnp.asarray(rng.normal(size=f.log_potential.shape), jnp.float32) for f in mrf.factors],
        )
        z, _ = both(m)
        np.testing.assert_allclose(float(z), brute(m)[0], rtol=1e-5)


@pytest.mark.parametrize("w,heights", [(8, (8, 16, 32)), (5, (24, 48))])
def test_compiled_program_size_does_not_grow_with_the_number_of_factors(w, heights):
    """Grids of one width and growing height lower to the same number of ops (one loop).

    Width 5 with blocks of 4 has five block phases per row; once every phase has
    appeared, taller grids add nothing to the program.
    """
    counts = []
    for h in heights:
        mrf, _ = grid_mrf(h, w, seed=h)
        lp, vg, _ = _compiled(_key(mrf, None), "auto")
        flat = flatten_tables([f.log_potential for f in mrf.factors], jnp.float32)
        counts.append(
            tuple(len(re.findall(r"stablehlo\.\w+", f.lower(flat).as_text())) for f in (lp, vg))
        )
    assert len(set(counts)) == 1, counts


# --- larger grids -----------------------------------------------------------------------------
@pytest.mark.slow
def test_20x20_grid_log_z_and_all_marginals_match_a_transfer_matrix_sweep():
    h = w = 20
    mrf, (unary, horiz, vert) = grid_mrf(h, w, seed=20)
    want_z, want_marg = transfer_matrix_sweep(h, w, unary, horiz, vert)
    got_z, mg = log_partition_and_marginals(mrf)
    np.testing.assert_allclose(float(got_z), want_z, rtol=2e-6)
    got = np.stack([np.asarray(v) for v in mg.variables]).reshape(h, w, 2)
    np.testing.assert_allclose(got, want_marg, atol=2e-5)


def test_transfer_matrix_oracle_against_brute_force():
    mrf, (unary, horiz, vert) = grid_mrf(3, 4, seed=9)
    want_z, _, vm, _ = brute(mrf)
    z, marg = transfer_matrix_sweep(3, 4, unary, horiz, vert)
    np.testing.assert_allclose(z, want_z, rtol=1e-12)
    np.testing.assert_allclose(marg.reshape(12, 2), np.stack(vm), atol=1e-12)


# --- MAP and bad input ----------------------------------------------------------------------------
def test_map_eager_and_compiled_reach_the_maximum():
    for mrf in (grid_mrf(3, 4, seed=5)[0], guard_cases()["range_300_600"]):
        L = brute(mrf)[3]
        for x in (
            map_assignment(mrf),
            map_assignment(mrf, method="log"),
            jax.jit(map_assignment)(mrf),
        ):
            x = np.asarray(x)
            assert x.dtype == np.int32
            assert math.isclose(L[tuple(x)], L.max(), rel_tol=1e-6, abs_tol=1e-4)


def test_bad_method_and_scaled_on_unsupported_structures():
    mrf, _ = grid_mrf(2, 2)
    with pytest.raises(ValueError, match="`method` must be one of"):
        log_partition(mrf, method="fast")
    with pytest.raises(ValueError, match="`method` must be one of"):
        marginals(mrf, method=None)
    with pytest.raises(ValueError, match="`method` must be one of 'auto', 'log'"):
        map_assignment(mrf, method="scaled")
    mixed = DiscreteMRF([2, 3], [Factor((0, 1), np.zeros((2, 3)))])
    with pytest.raises(ValueError, match="method='scaled'"):
        jax.jit(lambda m: log_partition(m, method="scaled"))(mixed)
