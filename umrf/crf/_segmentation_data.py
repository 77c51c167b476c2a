"""Noisy three-class segmentation scenes built from scikit-learn's shipped data.

Each ``size × size`` RGB image (default 32 × 32) contains, on a textured
background, an ellipse and a handwritten digit; the label map has three
classes: 0 = background, 1 = ellipse, 2 = digit stroke (the digit is drawn
on top). The generator (deterministic given ``seed``):

1. **Background texture**: a random ``size × size`` block-averaged crop of
   one of ``sklearn.datasets.load_sample_images()`` (grey levels in [0, 1]),
   shown at low contrast, ``0.35 + 0.3 (g - mean g)``, in all three channels.
2. **Ellipse**: random centre and semi-axes ``(0.15…0.35) · size``, filled
   with a random colour ``c_1 ∈ [0, 1]³``.
3. **Digit**: a random 8 × 8 image of ``sklearn.datasets.load_digits()``,
   upsampled by ``3`` (nearest neighbour, then a 3 × 3 box blur) to
   ``24 × 24``, pasted at a random offset; its stroke pixels (blurred
   intensity > 0.45 of the maximum) take a random colour ``c_2``.
4. **Noise**: i.i.d. Gaussian pixel noise of standard deviation ``noise``
   (default 0.3) in every channel; values are not clipped.

Colours are drawn independently per image, so a single pixel's colour does
not reveal its class: the network must use shape and context, and the CRF's
bilateral kernel can exploit that each region is roughly uniform in colour.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from umrf._validation import check_positive, check_positive_int

NUM_CLASSES = 3


class SegmentationData(NamedTuple):
    """Images and label maps.

    Attributes:
      images: ``(N, H, W, 3)`` float32 noisy RGB images.
      labels: ``(N, H, W)`` int32 class maps (0 background, 1 ellipse, 2 digit).
    """

    images: np.ndarray
    labels: np.ndarray


@lru_cache(maxsize=1)
def _sources() -> tuple[np.ndarray, list[np.ndarray]]:
    from sklearn.datasets import load_digits, load_sample_images

    digits = load_digits().images.astype(np.float32) / 16.0
    greys = [img.astype(np.float32).mean(-1) / 255.0 for img in load_sample_images().images]
    return digits, greys


def _box_blur(x: np.ndarray) -> np.ndarray:
    p = np.pad(x, 1, mode="edge")
    return sum(p[i : i + x.shape[0], j : j + x.shape[1]] for i in range(3) for j in range(3)) / 9


def make_segmentation_dataset(
    num_images: int, *, size: int = 32, noise: float = 0.3, seed: int = 0
) -> SegmentationData:
    """Generate noisy scenes with an ellipse and a digit (see the module docstring).

    Args:
      num_images: number of images ``N``.
      size: image side (``>= 24``).
      noise: standard deviation of the pixel noise.
      seed: numpy seed.

    Returns:
      :class:`SegmentationData` with ``(N, size, size, 3)`` images.

    Examples:
      >>> from umrf.crf import make_segmentation_dataset
      >>> d = make_segmentation_dataset(2, seed=0)
      >>> d.images.shape, d.labels.shape
      ((2, 32, 32, 3), (2, 32, 32))
    """
    num_images = check_positive_int("num_images", num_images)
    size = check_positive_int("size", size)
    if size < 24:
        raise ValueError(f"`size` must be >= 24 (the upsampled digit is 24 × 24); got {size}.")
    check_positive("noise", noise, allow_zero=True)
    digits, greys = _sources()
    rng = np.random.default_rng(seed)
    images = np.zeros((num_images, size, size, 3), np.float32)
    labels = np.zeros((num_images, size, size), np.int32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for n in range(num_images):
        grey = greys[rng.integers(len(greys))]
        scale = 4
        r0 = rng.integers(0, grey.shape[0] - size * scale)
        c0 = rng.integers(0, grey.shape[1] - size * scale)
        crop = grey[r0 : r0 + size * scale, c0 : c0 + size * scale]
        tex = crop.reshape(size, scale, size, scale).mean((1, 3))
        img = np.repeat((0.35 + 0.3 * (tex - tex.mean()))[..., None], 3, axis=-1)
        lab = np.zeros((size, size), np.int32)
        cy, cx = rng.uniform(0.25, 0.75, size=2) * size
        ay, ax = rng.uniform(0.15, 0.35, size=2) * size
        ell = ((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1.0
        img[ell] = rng.uniform(0, 1, size=3)
        lab[ell] = 1
        digit = _box_blur(np.kron(digits[rng.integers(len(digits))], np.ones((3, 3))))
        stroke = digit > 0.45 * digit.max()
        oy, ox = rng.integers(0, size - 24 + 1, size=2)
        region = np.zeros((size, size), bool)
        region[oy : oy + 24, ox : ox + 24] = stroke
        img[region] = rng.uniform(0, 1, size=3)
        lab[region] = 2
        images[n] = img + noise * rng.standard_normal(img.shape)
        labels[n] = lab
    return SegmentationData(images, labels)
