"""Check the digits demos' quality targets with an outside classifier (scikit-learn only).

Reads the files that ``umrf demo jem`` and ``umrf demo ncsn`` write and scores
them with tools umrf did not build or train: scikit-learn's digits, an RBF
SVM (``sklearn.svm.SVC``) trained on the training split, scikit-learn's PCA,
and numpy. umrf itself is not imported, and the fixed train/test split is
rebuilt here from its documented rule (``umrf/models/_digits.py``: per class,
the class's indices permuted by ``numpy.random.default_rng(class)``, the first
``round(0.2 n_c)`` are test images) and checked against the JEM file's
``test_indices``.

Targets (issue 11):

* JEM: test accuracy >= 95 % and within 1.5 points of the baseline; JEM's
  ECE (15 bins) below the baseline's; the SVM recognises >= 80 % of the
  class-conditional samples as their class; on the inpainted test images
  (half the pixels observed) SVM accuracy >= 85 % and pixel MSE on the
  missing pixels below mean imputation's.
* NCSN: SVM mean confidence >= 0.8; every class >= 4 % of the samples; the
  Fréchet distance in a 20-component PCA space (fitted on the training split)
  between the samples and the training set is within 5x the same figure for
  the test set, at the same sample count (the test set's size; the samples
  are subsampled, averaged over 10 random subsets).

Usage::

    python benchmarks/check_digits_demos.py --jem OUT/jem_digits.npz --ncsn OUT/ncsn_digits.npz

Exit status 0 when every target of the given files is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test.append(np.random.default_rng(int(c)).permutation(idx)[: int(round(0.2 * idx.size))])
    test = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(labels.size), test), test


def ece(probs: np.ndarray, labels: np.ndarray, num_bins: int = 15) -> float:
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for m in range(num_bins):
        lo, hi = m / num_bins, (m + 1) / num_bins
        inside = (conf > lo) & (conf <= hi) if m else (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(
                (pred[inside] == labels[inside]).mean() - conf[inside].mean()
            )
    return float(total)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    import scipy.linalg

    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cross = scipy.linalg.sqrtm(ca @ cb).real
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * cross))


class Report:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, name: str, value: float, ok: bool, target: str) -> None:
        print(f"  {name:<54} {value:>9.4f}   target {target:<28} {'met' if ok else 'MISSED'}")
        if not ok:
            self.failed.append(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jem", help="jem_digits.npz written by `umrf demo jem`")
    parser.add_argument("--ncsn", help="ncsn_digits.npz written by `umrf demo ncsn`")
    args = parser.parse_args(argv)
    if not (args.jem or args.ncsn):
        parser.error("pass --jem and/or --ncsn")

    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.svm import SVC

    digits = load_digits()
    images = digits.images.astype(np.float64) / 16.0
    labels = digits.target
    train_idx, test_idx = split_indices(labels)
    x_train = images[train_idx].reshape(-1, 64)
    svm = SVC(kernel="rbf", C=10.0, gamma="scale", probability=True, random_state=0)
    svm.fit(x_train, labels[train_idx])
    svm_test = float((svm.predict(images[test_idx].reshape(-1, 64)) == labels[test_idx]).mean())
    print(f"outside classifier: RBF SVM (C=10, gamma='scale'), test accuracy {svm_test:.2%}")
    report = Report()

    if args.jem:
        f = np.load(args.jem)
        print(f"\nJEM ({args.jem})")
        if not np.array_equal(np.sort(f["test_indices"]), test_idx):
            print("  test_indices differ from the documented split")
            report.failed.append("test_indices")
        y_test = labels[f["test_indices"]]
        acc = float((f["test_probs"].argmax(1) == y_test).mean())
        acc_base = float((f["test_probs_baseline"].argmax(1) == y_test).mean())
        ece_jem, ece_base = ece(f["test_probs"], y_test), ece(f["test_probs_baseline"], y_test)
        report.check("JEM test accuracy", acc, acc >= 0.95, ">= 0.95")
        report.check("baseline test accuracy", acc_base, True, "(reference)")
        report.check(
            "JEM accuracy minus baseline accuracy",
            acc - acc_base,
            acc >= acc_base - 0.015,
            ">= -0.015",
        )
        report.check("JEM ECE (15 bins)", ece_jem, ece_jem < ece_base, "< baseline ECE")
        report.check("baseline ECE (15 bins)", ece_base, True, "(reference)")
        s, sl = f["samples"], f["sample_labels"]
        ok_range = bool(s.min() >= 0.0 and s.max() <= 1.0 and s.shape[0] >= 200)
        ok_range &= set(np.unique(sl).tolist()) == set(range(10))
        report.check(
            "samples: N >= 200, in [0, 1], all classes (1 = yes)", float(ok_range), ok_range, "1"
        )
        pred = svm.predict(s.reshape(len(s), 64))
        rec = float((pred == sl).mean())
        report.check("SVM recognises class-conditional samples", rec, rec >= 0.8, ">= 0.80")
        per_class = [float((pred[sl == c] == c).mean()) for c in range(10)]
        print("    per class: " + " ".join(f"{c}:{v:.2f}" for c, v in enumerate(per_class)))
        idx, mask, filled = f["inpaint_indices"], f["inpaint_mask"], f["inpainted"]
        truth = images[idx]
        ok = bool(np.isin(idx, test_idx).all() and np.array_equal(filled[mask], truth[mask]))
        ok &= bool(filled.min() >= 0.0 and filled.max() <= 1.0)
        report.check(
            "inpainting: test images, observed pixels unchanged (1 = yes)", float(ok), ok, "1"
        )
        report.check(
            "inpainting: fraction of pixels observed",
            float(mask.mean()),
            abs(mask.mean() - 0.5) < 0.05,
            "about 0.5",
        )
        mean_fill = np.where(mask, truth, x_train.reshape(-1, 8, 8).mean(0))
        inp_acc = float((svm.predict(filled.reshape(len(idx), 64)) == labels[idx]).mean())
        mean_acc = float((svm.predict(mean_fill.reshape(len(idx), 64)) == labels[idx]).mean())
        report.check("SVM accuracy on inpainted test images", inp_acc, inp_acc >= 0.85, ">= 0.85")
        report.check("SVM accuracy on mean-imputed images", mean_acc, True, "(reference)")
        mse = float(((filled - truth)[~mask] ** 2).mean())
        mse_mean = float(((mean_fill - truth)[~mask] ** 2).mean())
        report.check(
            "pixel MSE on missing pixels, JEM inpainting", mse, mse < mse_mean, "< mean imputation"
        )
        report.check("pixel MSE on missing pixels, mean imputation", mse_mean, True, "(reference)")

    if args.ncsn:
        f = np.load(args.ncsn)
        s = f["samples"]
        print(f"\nNCSN ({args.ncsn})")
        ok = bool(s.ndim == 3 and s.shape[0] >= 500 and s.min() >= 0.0 and s.max() <= 1.0)
        report.check("samples: N >= 500, (N, 8, 8), in [0, 1] (1 = yes)", float(ok), ok, "1")
        flat = s.reshape(len(s), 64)
        proba = svm.predict_proba(flat)
        conf = float(proba.max(1).mean())
        report.check("SVM mean confidence on samples", conf, conf >= 0.8, ">= 0.80")
        frac = np.bincount(proba.argmax(1), minlength=10) / len(s)
        print("    class fractions: " + " ".join(f"{c}:{v:.3f}" for c, v in enumerate(frac)))
        report.check(
            "smallest class fraction (SVM labels)", float(frac.min()), frac.min() >= 0.04, ">= 0.04"
        )
        pca = PCA(20, random_state=0).fit(x_train)
        z_train = pca.transform(x_train)
        n = len(test_idx)
        fd_test = frechet(pca.transform(images[test_idx].reshape(-1, 64)), z_train)
        rng = np.random.default_rng(0)
        fds = (
            [
                frechet(pca.transform(flat[rng.choice(len(s), n, replace=False)]), z_train)
                for _ in range(10)
            ]
            if len(s) >= n
            else [frechet(pca.transform(flat), z_train)]
        )
        fd = float(np.mean(fds))
        report.check(
            f"Fréchet distance (PCA-20) samples vs train, n={n}",
            fd,
            fd <= 5 * fd_test,
            f"<= 5 x {fd_test:.3f}",
        )
        report.check(
            "Fréchet distance (PCA-20) test vs train (baseline)", fd_test, True, "(reference)"
        )
        report.check("ratio samples / baseline", fd / fd_test, fd <= 5 * fd_test, "<= 5")

    print("\nall targets met" if not report.failed else f"\nMISSED: {', '.join(report.failed)}")
    return 0 if not report.failed else 1


if __name__ == "__main__":
    sys.exit(main())
