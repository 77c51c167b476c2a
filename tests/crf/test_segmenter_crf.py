"""U-Net + grid-CRF segmenter: data generator, end-to-end training, CRF-only stage."""

import numpy as np
import pytest
from flax import nnx

from umrf.crf import (
    Segmenter,
    make_segmentation_dataset,
    mean_iou,
    train_segmenter,
)


def test_generator_classes_and_noise():
    clean = make_segmentation_dataset(8, noise=0.0, seed=0)
    noisy = make_segmentation_dataset(8, noise=0.3, seed=0)
    assert clean.images.shape == (8, 32, 32, 3) and clean.labels.dtype == np.int32
    assert set(np.unique(clean.labels)) == {0, 1, 2}
    np.testing.assert_array_equal(clean.labels, noisy.labels)  # same scene, more noise
    resid = noisy.images - clean.images
    np.testing.assert_allclose(resid.std(), 0.3, rtol=0.05)
    # Without noise, each ellipse / digit region has one colour per image.
    for img, lab in zip(clean.images, clean.labels, strict=True):
        for c in (1, 2):
            assert np.ptp(img[lab == c], axis=0).max() < 1e-6
    with pytest.raises(ValueError, match="size"):
        make_segmentation_dataset(1, size=16)


def test_mean_iou_closed_form():
    true = np.array([[0, 0, 1, 1], [2, 2, 2, 2]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 2, 0]])
    # IoU: class 0: 1/3, class 1: 2/3, class 2: 3/4.
    np.testing.assert_allclose(mean_iou(pred, true, 3), np.mean([1 / 3, 2 / 3, 3 / 4]))


def test_unet_crf_trains_end_to_end_and_crf_stage():
    data = make_segmentation_dataset(16, size=24, seed=0)
    model = Segmenter(3, use_crf=True, width=4, num_iters=2, radius=1, rngs=nnx.Rngs(0))
    before = np.asarray(model.log_kernels[...]).copy()
    fit = train_segmenter(model, data, steps=20, batch_size=8, learning_rate=1e-2)
    assert not fit.diverged
    assert fit.losses[-5:].mean() < fit.losses[:5].mean() - 0.05
    # Gradients reached the CRF parameters through the unrolled mean field.
    assert np.abs(np.asarray(fit.model.log_kernels[...]) - before).max() > 1e-3
    # CRF-only stage: the U-Net stays frozen, the CRF parameters move.
    unet_before = np.asarray(fit.model.unet.head.kernel[...]).copy()
    fit2 = train_segmenter(fit.model, data, steps=3, batch_size=8, trainable="crf")
    np.testing.assert_array_equal(fit2.model.unet.head.kernel[...], unet_before)
    assert not np.array_equal(fit2.model.log_kernels[...], fit.model.log_kernels[...])
    with pytest.raises(ValueError, match="trainable"):
        train_segmenter(fit.model, data, steps=1, trainable="unet")
