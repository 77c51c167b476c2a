"""`umrf demo` end to end (tiny run) and the CLI's argument handling."""

import re

import numpy as np
import pytest

from umrf.cli import main


def test_demo_writes_png_npz_and_prints_precision_recall(tmp_path, capsys):
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
    row = r"^(data vs data \(baseline\)|DSM.*?|PCD.*?)\s{2,}([0-9.]+)\s+([0-9.]+)"
    rows = re.findall(row, out, re.M)
    assert [r[0].split()[0] for r in rows] == ["data", "DSM", "PCD"]
    values = [float(v) for r in rows for v in r[1:]]  # k-NN precision and recall, in [0, 1]
    assert all(0.0 <= v <= 1.0 for v in values)
    npz = np.load(tmp_path / "umrf_demo_two_moons.npz")
    assert npz["samples_dsm"].shape == npz["samples_pcd"].shape == npz["data"].shape == (200, 2)
    assert all(np.isfinite(npz[k]).all() for k in npz.files)
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
