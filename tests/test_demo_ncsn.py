"""`umrf demo ncsn` end to end (tiny run): printout, PNG, npz schema/shape/range, bad arguments."""

import re

import numpy as np
import pytest

from umrf.cli import main
from umrf.cli._demo_ncsn import overlap_ratio, step_size


def test_demo_ncsn_writes_png_and_npz(tmp_path, capsys):
    rc = main(
        [
            "demo",
            "ncsn",
            "--out",
            str(tmp_path),
            "--steps",
            "3",
            "--batch-size",
            "16",
            "--channels",
            "4",
            "8",
            "--levels",
            "3",
            "--steps-per-level",
            "1",
            "--num-samples",
            "24",
            "--no-progress",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "3 noise levels" in out and "data vs data" in out
    fd = re.search(r"Fréchet distance.*?\)\s+([0-9.]+)\s+([0-9.]+)", out)
    assert fd and all(np.isfinite(float(v)) for v in fd.groups())
    png, npz = tmp_path / "ncsn_digits.png", tmp_path / "ncsn_digits.npz"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    with np.load(npz) as f:
        assert f.files == ["samples"]
        s = f["samples"]
    assert s.shape == (24, 8, 8) and s.dtype == np.float32
    assert s.min() >= 0.0 and s.max() <= 1.0 and np.isfinite(s).all()
    assert not list(tmp_path.glob("*.tmp*"))


def test_song_ermon_techniques_2_and_4():
    # technique 2: the overlap mass at the returned ratio is 1/2
    from math import erf, sqrt

    def mass(g, d):
        a = sqrt(2 * d) * (g - 1)
        return 0.5 * (erf((a + 3 * g) / sqrt(2)) - erf((a - 3 * g) / sqrt(2)))

    for d in (64, 3072):
        assert mass(overlap_ratio(d), d) == pytest.approx(0.5, abs=1e-6)

    # technique 4: eps minimises eq. (6); nearby steps give a larger ratio
    def ratio(eps, gamma=1.3, t=5, s2=1e-4):
        c = 1 - eps / s2
        b = 2 * eps / (s2 - s2 * c**2)
        return c ** (2 * t) * (gamma**2 - b) + b

    eps = step_size(0.01, 1.3, 5)
    assert 0 < eps < 1e-4
    assert ratio(eps) <= min(ratio(0.9 * eps), ratio(1.1 * eps))


def test_demo_ncsn_rejects_bad_arguments():
    with pytest.raises(SystemExit, match="steps"):
        main(["demo", "ncsn", "--steps", "0"])
    with pytest.raises(SystemExit, match="levels"):
        main(["demo", "ncsn", "--levels", "1"])
    with pytest.raises(SystemExit, match="ema"):
        main(["demo", "ncsn", "--ema", "1.0"])
    with pytest.raises(SystemExit, match="num-samples"):
        main(["demo", "ncsn", "--num-samples", "2"])
