"""`umrf demo` end to end (tiny run) and the CLI's argument handling."""

import math
import re

import pytest

from umrf.cli import main


def test_demo_writes_png_and_prints_finite_metric(tmp_path, capsys):
    rc = main(
        [
            "demo",
            "--dataset",
            "two_moons",
            "--steps",
            "20",
            "--num-samples",
            "200",
            "--batch-size",
            "64",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    png = tmp_path / "umrf_demo_two_moons.png"
    assert png.exists() and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    values = [float(v) for v in re.findall(r"MMD² = (-?[0-9.]+(?:e-?\d+)?)", out)]
    assert len(values) == 3  # baseline, DSM, PCD
    assert all(math.isfinite(v) for v in values)
    assert "baseline" in out and str(png.resolve()) in out


def test_help_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--dataset", "mnist"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit, match="steps"):
        main(["demo", "--steps", "0"])


def test_bench_lists_cases(capsys):
    assert main(["bench", "--list"]) == 0  # the suite itself: tests/test_bench_cli.py
    assert "gibbs/ising64" in capsys.readouterr().out
