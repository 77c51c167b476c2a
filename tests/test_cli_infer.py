"""`umrf infer` end to end: UAI files in, UAI competition result format out."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest

from umrf.cli import main

MODEL = """\
MARKOV
3
2 2 3
3
1 0
2 0 1
2 1 2

2
 0.4 1.6
4
 2.0 1.0
 0.5 3.0
6
 1.0 2.0 0.0
 0.25 1.5 4.0
"""

BAYES = """\
BAYES
2
2 2
2
1 0
2 0 1

2
 0.3 0.7
4
 0.9 0.1
 0.2 0.8
"""


def joint(evidence=None):
    """The unnormalised joint of MODEL by enumeration, with evidence clamped."""
    f0 = [0.4, 1.6]
    f1 = [[2.0, 1.0], [0.5, 3.0]]
    f2 = [[1.0, 2.0, 0.0], [0.25, 1.5, 4.0]]
    p = np.zeros((2, 2, 3))
    for a, b, c in itertools.product(range(2), range(2), range(3)):
        if evidence and any((a, b, c)[v] != s for v, s in evidence.items()):
            continue
        p[a, b, c] = f0[a] * f1[a][b] * f2[b][c]
    return p


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "m.uai"
    model.write_text(MODEL)
    evid = tmp_path / "m.uai.evid"
    evid.write_text("1 2 1\n")
    return model, evid


def run(capsys, *argv):
    rc = main(["infer", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out.split("\n"), out.err


def test_pr_prints_log10_of_z(files, capsys):
    model, evid = files
    rc, lines, _ = run(capsys, model, "--task", "PR")
    assert rc == 0 and lines[0] == "PR"
    np.testing.assert_allclose(float(lines[1]), math.log10(joint().sum()), rtol=1e-6)
    rc, lines, _ = run(capsys, model, "--evid", evid)  # PR is the default task
    assert rc == 0 and lines[0] == "PR"
    np.testing.assert_allclose(float(lines[1]), math.log10(joint({2: 1}).sum()), rtol=1e-6)


def test_mar_prints_every_variable_with_evidence_as_a_delta(files, capsys):
    model, evid = files
    rc, lines, _ = run(capsys, model, "--evid", evid, "--task", "mar")
    assert rc == 0 and lines[0] == "MAR"
    tokens = lines[1].split()
    assert tokens[0] == "3"
    p = joint({2: 1})
    p = p / p.sum()
    want = [p.sum(axis=(1, 2)), p.sum(axis=(0, 2)), [0.0, 1.0, 0.0]]
    pos = 1
    for k, w in zip((2, 2, 3), want, strict=True):
        assert int(tokens[pos]) == k
        np.testing.assert_allclose([float(t) for t in tokens[pos + 1 : pos + 1 + k]], w, atol=1e-6)
        pos += 1 + k
    assert pos == len(tokens)


def test_map_prints_a_most_probable_assignment(files, capsys):
    model, evid = files
    p = joint()
    best = np.unravel_index(np.argmax(p), p.shape)
    rc, lines, _ = run(capsys, model, "--task", "MAP")
    assert rc == 0 and lines[0] == "MAP"
    assert lines[1].split() == ["3", *map(str, best)]
    rc, lines, _ = run(capsys, model, "--evid", evid, "--task", "MPE")
    pe = joint({2: 1})
    best = np.unravel_index(np.argmax(pe), pe.shape)
    assert rc == 0 and lines[1].split() == ["3", *map(str, best)]


def test_bayes_file_and_probability_of_evidence(tmp_path, capsys):
    model = tmp_path / "bn.uai"
    model.write_text(BAYES)
    evid = tmp_path / "bn.evid"
    evid.write_text("1 1 1\n")
    rc, lines, _ = run(capsys, model, "--evid", evid)
    assert rc == 0
    np.testing.assert_allclose(float(lines[1]), math.log10(0.3 * 0.1 + 0.7 * 0.8), rtol=1e-6)


def test_errors_name_the_file_and_line(tmp_path, files, capsys):
    bad = tmp_path / "bad.uai"
    bad.write_text(MODEL.replace("0.25 1.5 4.0", "0.25 -1.5 4.0"))
    rc, _, err = run(capsys, bad)
    assert rc == 2 and "bad.uai, line 16" in err and "negative" in err
    rc, _, err = run(capsys, tmp_path / "absent.uai")
    assert rc == 2 and "No such file" in err
    model, _ = files
    out_of_range = tmp_path / "e.evid"
    out_of_range.write_text("1 2 5\n")
    rc, _, err = run(capsys, model, "--evid", out_of_range)
    assert rc == 2 and "evidence[2]" in err
    never = tmp_path / "never.evid"
    never.write_text("2 1 0 2 2\n")  # f2(x1 = 0, x2 = 2) = 0: the evidence is impossible
    assert joint({1: 0, 2: 2}).sum() == 0
    rc, _, err = run(capsys, model, "--evid", never, "--task", "MAR")
    assert rc == 1 and "probability zero" in err
    rc, lines, _ = run(capsys, model, "--evid", never, "--task", "PR")
    assert rc == 0 and lines[:2] == ["PR", "-inf"]


def test_help_lists_infer_and_the_console_script_runs(files):
    model, _ = files
    out = subprocess.run(
        [sys.executable, "-m", "umrf.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "infer" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "umrf.cli", "infer", str(model), "--task", "PR"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split("\n")[0] == "PR"
    np.testing.assert_allclose(float(out.stdout.split("\n")[1]), math.log10(joint().sum()), 1e-6)
