"""`umrf demo rbm` end to end (tiny run): printout, PNG, npz contents, argument errors."""

import re

import numpy as np
import pytest

import umrf
from umrf.cli import main


def test_demo_rbm_writes_png_and_npz_and_prints_both_trainers(tmp_path, capsys):
    rc = main(
        [
            "demo",
            "rbm",
            "--out",
            str(tmp_path),
            "--hidden",
            "4",
            "--hidden-ais",
            "8",
            "--epochs",
            "2",
            "--ais-chains",
            "8",
            "--ais-temperatures",
            "20",
            "--sample-steps",
            "5",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(umrf|scikit-learn)\s+(\d+)\s+\S+\s+\S+\s+(-?\d+\.\d+)", out, re.M)
    assert [(who, int(h)) for who, h, _ in rows] == [
        ("umrf", 4),
        ("scikit-learn", 4),
        ("umrf", 8),
        ("scikit-learn", 8),
    ]
    lls = [float(v) for _, _, v in rows]
    assert all(-64 * np.log(2) - 1 < v < 0 for v in lls)  # a log-likelihood of 64 binary pixels
    assert "exact log Z" in out and "AIS" in out and "faster per epoch" in out
    png, npz = tmp_path / "rbm_digits.png", tmp_path / "rbm_digits.npz"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    with np.load(npz) as f:
        assert f["W"].shape == (64, 8) and f["b_visible"].shape == (64,)
        assert f["c_hidden"].shape == (8,) and f["W_exact"].shape == (64, 4)
        np.testing.assert_array_equal(
            f["test_indices"], umrf.models.load_digits(binarize=True).test_indices
        )
        assert float(f["test_log_likelihood_umrf_4"]) == pytest.approx(lls[0], abs=1e-3)
    assert not list(tmp_path.glob("*.tmp*"))


def test_demo_rbm_rejects_bad_arguments():
    with pytest.raises(SystemExit, match="epochs"):
        main(["demo", "rbm", "--epochs", "0"])
    with pytest.raises(SystemExit, match="24"):
        main(["demo", "rbm", "--hidden", "30"])
    with pytest.raises(SystemExit, match="lr"):
        main(["demo", "rbm", "--lr", "-1"])
