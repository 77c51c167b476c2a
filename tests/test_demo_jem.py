"""`umrf demo jem` end to end (tiny run): printout, PNG, the npz schema of issue 11, errors."""

import re

import numpy as np
import pytest

import umrf
from umrf.cli import main

TINY = [
    "--steps",
    "3",
    "--warmup",
    "1",
    "--sgld-steps",
    "2",
    "--channels",
    "4",
    "8",
    "--hidden",
    "8",
    "--samples-per-class",
    "20",
    "--sample-steps",
    "2",
    "--num-inpaint",
    "12",
    "--masked-fraction",
    "0",
    "--no-progress",
]


def test_demo_jem_writes_png_and_npz_with_the_issue_schema(tmp_path, capsys):
    assert main(["demo", "jem", "--out", str(tmp_path), *TINY]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(JEM|baseline \(cross-entropy\))\s+(\d+\.\d+)%\s+(\d\.\d+)", out, re.M)
    assert [r[0] for r in rows] == ["JEM", "baseline (cross-entropy)"]
    assert "mean imputation" in out and "total" in out
    png, npz = tmp_path / "jem_digits.png", tmp_path / "jem_digits.npz"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    digits = umrf.models.load_digits()
    images = np.concatenate([digits.x_train, digits.x_test])
    index = np.concatenate([digits.train_indices, digits.test_indices])
    by_index = np.empty_like(images)
    by_index[index] = images  # images addressed by their sklearn.datasets.load_digits() index
    with np.load(npz) as f:
        assert sorted(f.files) == sorted(
            [
                "samples",
                "sample_labels",
                "test_indices",
                "test_probs",
                "test_probs_baseline",
                "inpaint_indices",
                "inpaint_mask",
                "inpainted",
            ]
        )
        s, sl = f["samples"], f["sample_labels"]
        assert s.shape == (200, 8, 8) and sl.shape == (200,)
        assert s.min() >= 0.0 and s.max() <= 1.0
        assert np.array_equal(np.bincount(sl, minlength=10), np.full(10, 20))
        np.testing.assert_array_equal(f["test_indices"], digits.test_indices)
        t = len(digits.test_indices)
        for name in ("test_probs", "test_probs_baseline"):
            p = f[name]
            assert p.shape == (t, 10) and p.min() >= 0.0
            np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
            acc = float(np.mean(p.argmax(1) == digits.y_test))
            assert any(abs(100 * acc - float(v)) < 0.01 for _, v, _ in rows)
        idx, mask, filled = f["inpaint_indices"], f["inpaint_mask"], f["inpainted"]
        assert idx.shape == (12,) and np.isin(idx, digits.test_indices).all()
        assert mask.shape == filled.shape == (12, 8, 8) and mask.dtype == np.bool_
        assert np.all(mask.reshape(12, 64).sum(1) == 32)  # exactly half observed
        assert filled.min() >= 0.0 and filled.max() <= 1.0
        truth = by_index[idx]
        np.testing.assert_array_equal(filled[mask], truth[mask].astype(np.float32))
    assert not list(tmp_path.glob("*.tmp*"))


def test_demo_jem_rejects_bad_arguments():
    with pytest.raises(SystemExit, match="--steps"):
        main(["demo", "jem", "--steps", "0"])
    with pytest.raises(SystemExit, match="--samples-per-class"):
        main(["demo", "jem", "--samples-per-class", "5"])
    with pytest.raises(SystemExit, match="--lr"):
        main(["demo", "jem", "--lr", "-1"])
