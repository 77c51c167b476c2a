"""The UAI format: hand-written files, round trips, pgmpy's reader, errors that name the line."""

import itertools
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.models import DiscreteMRF, Factor, read_uai, read_uai_evidence, write_uai

# A Markov network in the documented layout, with comments of both kinds and a hard zero.
SMALL_MARKOV = """\
MARKOV
3
2 2 3
2        # two functions
2 0 1
3 0 1 2

4
 1.5 0.5
 2.0 0.0
12       # x0 slowest, x2 fastest
 0.25 1.25 2.5
 0.5 0.75 3.0
 1.0 2.0 0.125
 4.0 1.0 0.5
"""

# A 3x3 binary grid: 9 unaries then 12 edges (all values written by hand).
GRID_3X3 = """\
MARKOV
9
2 2 2 2 2 2 2 2 2
21
1 0
1 1
1 2
1 3
1 4
1 5
1 6
1 7
1 8
2 0 1
2 1 2
2 3 4
2 4 5
2 6 7
2 7 8
2 0 3
2 3 6
2 1 4
2 4 7
2 2 5
2 5 8

2
 0.6 1.4
2
 1.1 0.9
2
 0.3 2.2
2
 1.7 0.4
2
 1.0 1.0
2
 0.8 1.6
2
 2.5 0.2
2
 0.9 1.3
2
 1.2 0.7
4
 2.0 0.5 0.5 2.0
4
 1.5 0.8 0.8 1.5
4
 0.4 1.9 1.9 0.4
4
 3.0 1.0 1.0 3.0
4
 1.2 0.6 0.9 1.8
4
 0.7 1.3 1.1 0.5
4
 2.2 0.3 0.3 2.2
4
 1.0 2.0 0.5 1.0
4
 0.6 0.6 1.4 1.4
4
 1.8 0.9 0.9 1.8
4
 0.5 1.5 2.5 0.5
4
 1.1 1.1 0.2 2.0
"""

# A Bayesian network P(A) P(B | A) P(C | A, B): the child is last in each scope and varies
# fastest in its table; every CPT row sums to one.
SMALL_BAYES = """\
BAYES
3
2 3 2
3
1 0
2 0 1
3 0 1 2

2
 0.3 0.7
6
 0.5 0.25 0.25
 0.1 0.6 0.3
12
 0.9 0.1
 0.4 0.6
 0.5 0.5
 0.2 0.8
 1.0 0.0
 0.35 0.65
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def brute_log_z(mrf, evidence=None):
    evidence = evidence or {}
    cards = mrf.cardinalities
    total = 0.0
    for x in itertools.product(*(range(k) for k in cards)):
        if any(x[v] != s for v, s in evidence.items()):
            continue
        w = 1.0
        for f in mrf.factors:
            w *= math.exp(float(f.log_potential[tuple(x[v] for v in f.scope)]))
        total += w
    return math.log(total) if total > 0 else -math.inf


def test_small_markov_file_reads_as_written(tmp_path):
    mrf = read_uai(write(tmp_path, "small.uai", SMALL_MARKOV))
    assert mrf.cardinalities == (2, 2, 3)
    assert mrf.scopes == ((0, 1), (0, 1, 2))
    t0 = np.exp(np.asarray(mrf.factors[0].log_potential, np.float64))
    np.testing.assert_allclose(t0, [[1.5, 0.5], [2.0, 0.0]], rtol=1e-6)
    assert float(mrf.factors[0].log_potential[1, 1]) == -np.inf
    t1 = np.exp(np.asarray(mrf.factors[1].log_potential, np.float64))
    assert t1.shape == (2, 2, 3)
    np.testing.assert_allclose(t1[1, 0], [1.0, 2.0, 0.125], rtol=1e-6)  # last variable fastest
    # Z by hand: Σ_{x0,x1} f0(x0,x1) Σ_{x2} f1(x0,x1,x2)
    z = 1.5 * 4.0 + 0.5 * 4.25 + 2.0 * 3.125 + 0.0 * 5.5
    np.testing.assert_allclose(float(umrf.inference.log_partition(mrf)), math.log(z), rtol=1e-6)


def test_uai_2016_comment_lines(tmp_path):
    text = "c a hand-written model\nc second comment line\n" + SMALL_MARKOV
    a = read_uai(write(tmp_path, "c.uai", text))
    b = read_uai(write(tmp_path, "plain.uai", SMALL_MARKOV))
    assert a.scopes == b.scopes
    for fa, fb in zip(a.factors, b.factors, strict=True):
        np.testing.assert_array_equal(np.asarray(fa.log_potential), np.asarray(fb.log_potential))


def test_bayes_file_is_the_product_of_its_cpts(tmp_path):
    mrf = read_uai(write(tmp_path, "bn.uai", SMALL_BAYES))
    assert mrf.scopes == ((0,), (0, 1), (0, 1, 2))
    np.testing.assert_allclose(float(umrf.inference.log_partition(mrf)), 0.0, atol=1e-6)
    # P(C = 1) by hand: Σ_a Σ_b P(a) P(b | a) P(C = 1 | a, b)
    pa = [0.3, 0.7]
    pb = [[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]]
    pc1 = [[0.1, 0.6, 0.5], [0.8, 0.0, 0.65]]
    want = sum(pa[a] * pb[a][b] * pc1[a][b] for a in range(2) for b in range(3))
    got = umrf.inference.marginals(mrf).variables[2]
    np.testing.assert_allclose(float(got[1]), want, rtol=1e-6)
    # evidence: log Z of the conditioned model is log P(e)
    ev = write(tmp_path, "bn.uai.evid", "2 1 2 2 1\n")
    e = read_uai_evidence(ev)
    assert e == {1: 2, 2: 1}
    p_e = sum(pa[a] * pb[a][2] * pc1[a][2] for a in range(2))
    small = mrf.condition(e)
    np.testing.assert_allclose(float(umrf.inference.log_partition(small)), math.log(p_e), rtol=1e-6)


def test_round_trip_keeps_the_model(tmp_path):
    rng = np.random.default_rng(0)
    cards = [2, 3, 1, 4, 2]
    scopes = [(0, 1), (1, 2, 3), (3, 4), (4,), (2, 0), ()]
    tables = []
    for s in scopes:
        t = rng.normal(size=tuple(cards[v] for v in s)) * 3.0
        t = np.where(rng.random(t.shape) < 0.2, -np.inf, t)
        tables.append(t)
    mrf = DiscreteMRF(cards, [Factor(s, t) for s, t in zip(scopes, tables, strict=True)])
    path = tmp_path / "rt.uai"
    write_uai(path, mrf)
    back = read_uai(path)
    assert back.cardinalities == mrf.cardinalities
    assert back.scopes == mrf.scopes
    for a, b in zip(mrf.factors, back.factors, strict=True):
        a, b = np.asarray(a.log_potential), np.asarray(b.log_potential)
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        np.testing.assert_allclose(a[np.isfinite(a)], b[np.isfinite(b)], rtol=1e-6, atol=1e-6)
    # a second write of what was read is the same text (a fixed point)
    write_uai(tmp_path / "rt2.uai", back)
    write_uai(tmp_path / "rt3.uai", read_uai(tmp_path / "rt2.uai"))
    assert (tmp_path / "rt2.uai").read_text() == (tmp_path / "rt3.uai").read_text()
    np.testing.assert_allclose(
        float(umrf.inference.log_partition(back)), brute_log_z(mrf), rtol=1e-5
    )


def test_write_is_atomic_and_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "model.uai"
    path.write_text(SMALL_MARKOV)
    mrf = read_uai(path)

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        write_uai(path, DiscreteMRF([2], [Factor((0,), [0.0, 1.0])]))
    monkeypatch.undo()
    assert path.read_text() == SMALL_MARKOV  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.uai"]  # no temp file left
    write_uai(path, mrf)
    assert read_uai(path).scopes == mrf.scopes


def test_write_refuses_what_the_format_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match=r"factor 0 has log-potential -800"):
        write_uai(tmp_path / "x.uai", DiscreteMRF([2], [Factor((0,), [0.0, -800.0])]))
    with pytest.raises(TypeError, match="DiscreteMRF"):
        write_uai(tmp_path / "x.uai", "not a model")
    with pytest.raises(TypeError, match="`path`"):
        write_uai(3, DiscreteMRF([2], [Factor((0,), [0.0, 1.0])]))

    @jax.jit
    def inside(t):
        write_uai(tmp_path / "x.uai", DiscreteMRF([2], [Factor((0,), t)]))
        return t

    with pytest.raises(TypeError, match="traced"):
        inside(jnp.zeros(2))
    assert not (tmp_path / "x.uai").exists()


@pytest.mark.parametrize(
    "text,line,message",
    [
        ("MARKV\n1\n2\n0\n", 1, "MARKOV or BAYES"),
        ("MARKOV\n2\n2 two\n0\n", 3, "cardinality of variable 1"),
        ("MARKOV\n2\n2 0\n0\n", 3, "must be >= 1"),
        ("MARKOV\n2\n2 2\n1\n2 0 5\n4\n1 1 1 1\n", 5, r"must be in 0\.\.1"),
        ("MARKOV\n2\n2 2\n1\n2 1 1\n4\n1 1 1 1\n", 5, "repeats a variable"),
        ("MARKOV\n2\n2 2\n1\n2 0 1\n\n3\n1 1 1\n", 7, "has 3 entries but its scope"),
        ("MARKOV\n2\n2 2\n1\n2 0 1\n\n4\n1 1\n-1 1\n", 9, "negative"),
        ("MARKOV\n2\n2 2\n1\n2 0 1\n\n4\n1 abc 1 1\n", 8, "'abc' is not a number"),
        ("MARKOV\n2\n2 2\n1\n2 0 1\n\n4\n1 nan 1 1\n", 8, "not finite"),
        ("MARKOV\n2\n2 2\n1\n2 0 1\n\n4\n1 1\n", 8, "truncated"),
        ("MARKOV\n2\n2 2\n2\n2 0 1\n", 5, "truncated"),
        ("MARKOV\n2\n2 2\n1\n1 0\n2\n1 1\n2\n1 1\n", 8, "after the last of 1 tables"),
        ("BAYES\n2\n2 2\n2\n1 0\n2 1 0\n2\n.5 .5\n4\n.5 .5 .5 .5\n", 6, "second CPT"),
    ],
)
def test_malformed_files_name_the_line(tmp_path, text, line, message):
    p = write(tmp_path, "bad.uai", text)
    with pytest.raises(ValueError, match=rf"bad\.uai, line {line}\b.*{message}"):
        read_uai(p)


def test_bayes_cycle_and_missing_file(tmp_path):
    cyc = "BAYES\n2\n2 2\n2\n2 1 0\n2 0 1\n4\n.5 .5 .5 .5\n4\n.5 .5 .5 .5\n"
    with pytest.raises(ValueError, match="directed cycle"):
        read_uai(write(tmp_path, "cyc.uai", cyc))
    with pytest.raises(FileNotFoundError):
        read_uai(tmp_path / "absent.uai")
    with pytest.raises(TypeError, match="`path`"):
        read_uai(None)


@pytest.mark.parametrize(
    "text,expect",
    [
        ("0\n", {}),
        ("2 1 0 2 1\n", {1: 0, 2: 1}),
        ("1\n2 1 0 2 1\n", {1: 0, 2: 1}),  # the older layout with one evidence set
        ("c observed\n1 0 1\n", {0: 1}),
    ],
)
def test_evidence_formats(tmp_path, text, expect):
    assert read_uai_evidence(write(tmp_path, "e.evid", text)) == expect


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "empty"),
        ("2 1 0 2\n", "needs 5 integers"),
        ("2 1 x 2 1\n", "expected an integer, got 'x'"),
        ("2 1 -1 2 1\n", ">= 0"),
        ("2\n1 0 1\n1 1 0\n", "2 evidence sets"),
        ("2 1 0 1 1\n", "observed twice"),
    ],
)
def test_bad_evidence(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_uai_evidence(write(tmp_path, "e.evid", text))


# --- pgmpy reads the same files to the same log Z ------------------------------------------
def pgmpy_log_z(path):
    import warnings

    with warnings.catch_warnings():  # pgmpy's own deprecation warnings on import
        warnings.simplefilter("ignore")
        pytest.importorskip("pgmpy")
        from pgmpy.inference import VariableElimination
        from pgmpy.readwrite import UAIReader

        model = UAIReader(str(path)).get_model()
        var = sorted(model.nodes())[0]
        q = VariableElimination(model).query([var], show_progress=False)
    return math.log(float(np.sum(q.values)))  # pgmpy's VE keeps a Markov network unnormalised


@pytest.mark.parametrize("text", [SMALL_MARKOV, GRID_3X3])
def test_log_z_equals_pgmpy_uaireader_then_variable_elimination(tmp_path, text):
    path = write(tmp_path, "m.uai", text)
    want = pgmpy_log_z(path)
    mrf = read_uai(path)
    np.testing.assert_allclose(float(umrf.inference.log_partition(mrf)), want, rtol=1e-6)
    np.testing.assert_allclose(brute_log_z(mrf), want, rtol=1e-7)  # float32 tables


def test_a_model_umrf_writes_is_read_by_pgmpy_to_the_same_log_z(tmp_path):
    rng = np.random.default_rng(7)
    g = umrf.graphs.grid(3, 4)
    mrf = DiscreteMRF(
        [2] * 12,
        [Factor((v,), rng.normal(size=2)) for v in range(12)]
        + [Factor(e, rng.normal(size=(2, 2))) for e in g.edges],
    )
    path = tmp_path / "w.uai"
    write_uai(path, mrf)
    # pgmpy's number grammar has no exponent: this model's potentials are all plain decimals
    if "e" in path.read_text().split("\n", 4)[-1]:
        pytest.skip("potentials printed in exponent notation, which pgmpy cannot parse")
    np.testing.assert_allclose(
        pgmpy_log_z(path), float(umrf.inference.log_partition(mrf)), rtol=1e-6
    )


def test_pgmpy_test_grid_if_installed():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pgmpy = pytest.importorskip("pgmpy")
    grid = Path(pgmpy.__file__).parent / "tests" / "test_readwrite" / "testdata" / "grid4x4.uai"
    if not grid.exists():
        pytest.skip("this pgmpy installation ships without its test data (grid4x4.uai)")
    mrf = read_uai(grid)
    np.testing.assert_allclose(
        float(umrf.inference.log_partition(mrf)), pgmpy_log_z(grid), rtol=1e-6
    )
