"""A small U-Net with an optional CRF-as-RNN layer on top, trained end to end (flax NNX).

* :class:`UNet`: two-level U-Net (Ronneberger, Fischer & Brox 2015): SAME 3×3
  convolutions with ReLU, 2×2 max-pooling, transposed-convolution
  upsampling and skip connections; outputs per-pixel logits ``(B, H, W, C)``
  (``H`` and ``W`` divisible by 4).
* :class:`Segmenter`: the U-Net, and with ``use_crf=True`` a grid CRF whose
  mean-field iterations (:func:`umrf.crf.grid_mean_field`) refine the logits
  (Zheng et al. 2015). The CRF parameters are learned with the network: a
  label compatibility matrix (initialised to Potts) and the kernel
  weights/bandwidths, stored as logarithms so that they stay positive.
* :func:`train_segmenter`: Adam on the per-pixel softmax cross-entropy of the
  (refined) logits, one jitted step with parameters as traced arguments.

References:
  O. Ronneberger, P. Fischer, T. Brox. U-Net: convolutional networks for
  biomedical image segmentation. MICCAI 2015.

  S. Zheng et al. Conditional random fields as recurrent neural networks. ICCV 2015.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from umrf._validation import check_positive, check_positive_int
from umrf.crf._mean_field import GridKernels, grid_mean_field, potts_compatibility
from umrf.crf._metrics import mean_iou
from umrf.crf._segmentation_data import SegmentationData


def _pool(x: jax.Array) -> jax.Array:
    B, H, W, C = x.shape
    return jnp.max(x.reshape(B, H // 2, 2, W // 2, 2, C), axis=(2, 4))


class UNet(nnx.Module):
    """Two-level U-Net mapping images ``(B, H, W, F)`` to logits ``(B, H, W, C)``."""

    def __init__(
        self, in_features: int = 3, num_classes: int = 3, *, width: int = 16, rngs: nnx.Rngs
    ):
        w = width

        def conv(a, b, k=3):
            return nnx.Conv(a, b, (k, k), rngs=rngs)

        self.enc1 = nnx.List([conv(in_features, w), conv(w, w)])
        self.enc2 = nnx.List([conv(w, 2 * w), conv(2 * w, 2 * w)])
        self.bottom = conv(2 * w, 4 * w)
        self.up2 = nnx.ConvTranspose(4 * w, 2 * w, (2, 2), strides=(2, 2), rngs=rngs)
        self.dec2 = conv(4 * w, 2 * w)
        self.up1 = nnx.ConvTranspose(2 * w, w, (2, 2), strides=(2, 2), rngs=rngs)
        self.dec1 = conv(2 * w, w)
        self.head = conv(w, num_classes, 1)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Per-pixel logits."""
        relu = jax.nn.relu
        h1 = x
        for c in self.enc1:
            h1 = relu(c(h1))
        h2 = _pool(h1)
        for c in self.enc2:
            h2 = relu(c(h2))
        h3 = relu(self.bottom(_pool(h2)))
        d2 = relu(self.dec2(jnp.concatenate([self.up2(h3), h2], axis=-1)))
        d1 = relu(self.dec1(jnp.concatenate([self.up1(d2), h1], axis=-1)))
        return self.head(d1)


class Segmenter(nnx.Module):
    """U-Net, optionally followed by a learnable mean-field grid CRF.

    Args:
      num_classes: number of labels ``C``.
      use_crf: add the CRF-as-RNN layer.
      width: U-Net base width.
      num_iters: mean-field iterations (static).
      radius: CRF window radius (static).
      kernels: initial :class:`~umrf.crf.GridKernels`.
      rngs: ``nnx.Rngs``.
    """

    def __init__(
        self,
        num_classes: int = 3,
        *,
        use_crf: bool = True,
        width: int = 16,
        num_iters: int = 5,
        radius: int = 2,
        kernels: GridKernels | None = None,
        rngs: nnx.Rngs,
    ):
        self.use_crf = use_crf
        self.num_iters = num_iters
        self.radius = radius
        self.unet = UNet(3, num_classes, width=width, rngs=rngs)
        if use_crf:
            k = GridKernels(0.3, 1.0, 0.3, 2.0, 0.5) if kernels is None else kernels
            self.log_kernels = nnx.Param(jnp.log(jnp.asarray([float(v) for v in k])))
            self.compatibility = nnx.Param(potts_compatibility(num_classes))

    def kernels(self) -> GridKernels:
        """Current (positive) CRF kernel parameters."""
        return GridKernels(*jnp.exp(self.log_kernels[...]))

    def __call__(self, images: jax.Array) -> jax.Array:
        """Logits ``(B, H, W, C)``: the U-Net's, refined by mean field if ``use_crf``."""
        z = self.unet(images)
        if not self.use_crf:
            return z
        return grid_mean_field(
            z,
            self.compatibility[...],
            self.kernels(),
            images,
            num_iters=self.num_iters,
            radius=self.radius,
        )


class SegmenterFit(NamedTuple):
    """Result of :func:`train_segmenter`: trained model, losses, divergence flag."""

    model: Segmenter
    losses: np.ndarray
    diverged: bool


def train_segmenter(
    model: Segmenter,
    data: SegmentationData,
    *,
    steps: int = 200,
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    seed: int = 0,
    trainable: str = "all",
) -> SegmenterFit:
    """Train with Adam on the mean per-pixel cross-entropy of the (refined) logits.

    ``trainable="all"`` trains end to end: gradients flow through the
    unrolled mean-field iterations into the U-Net. ``trainable="crf"``
    freezes the U-Net and learns only the CRF's compatibility and kernel
    parameters (the usual first stage when a CRF is put on a trained network,
    as in Zheng et al. 2015; much cheaper, since nothing is back-propagated
    through the U-Net).

    Args:
      model: model to train (a trained copy is returned).
      data: training :class:`~umrf.crf.SegmentationData`.
      steps: optimisation steps.
      batch_size: images per step.
      learning_rate: Adam step size.
      seed: numpy seed of the minibatch order.
      trainable: ``"all"`` or ``"crf"``.

    Returns:
      :class:`SegmenterFit`; training stops at the first non-finite loss
      (``diverged=True``).
    """
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    check_positive("learning_rate", learning_rate)
    if trainable not in ("all", "crf"):
        raise ValueError(f"`trainable` must be 'all' or 'crf'; got {trainable!r}.")
    if trainable == "crf" and not model.use_crf:
        raise ValueError("`trainable='crf'` needs a Segmenter built with use_crf=True.")
    if trainable == "crf":
        crf_part = nnx.Any(nnx.PathContains("log_kernels"), nnx.PathContains("compatibility"))
        wanted = nnx.All(nnx.Param, crf_part)
    else:
        wanted = nnx.Param
    graphdef, params, rest = nnx.split(model, wanted, ...)
    tx = optax.adam(learning_rate)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, images, labels):
        def loss_fn(p):
            logits = nnx.merge(graphdef, p, rest)(images)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    n = data.images.shape[0]
    losses, diverged = [], False
    for _ in range(steps):
        idx = rng.choice(n, size=min(batch_size, n), replace=False)
        params, opt_state, loss = step(params, opt_state, data.images[idx], data.labels[idx])
        losses.append(float(loss))
        if not np.isfinite(losses[-1]):
            diverged = True
            break
    return SegmenterFit(nnx.merge(graphdef, params, rest), np.asarray(losses), diverged)


def predict_segmentation(model: Segmenter, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Label maps ``(N, H, W)`` (argmax of the model's logits), in batches."""
    fn = nnx.jit(lambda m, x: jnp.argmax(m(x), -1))
    out = [
        np.asarray(fn(model, images[i : i + batch_size])) for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out)


def evaluate_segmenter(model: Segmenter, data: SegmentationData) -> dict[str, float]:
    """Mean IoU (%) and pixel accuracy (%) of ``model`` on ``data``."""
    pred = predict_segmentation(model, data.images)
    C = model.unet.head.out_features
    return {
        "miou": 100.0 * mean_iou(pred, data.labels, C),
        "pixel_acc": 100.0 * float(np.mean(pred == data.labels)),
    }
