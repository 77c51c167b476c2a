r"""Small convolutional networks for 8×8 images: a classifier/energy and a score U-Net.

* :class:`ConvClassifier` maps a batch of images ``(B, H, W)`` to logits
  ``f(x)`` of shape ``(B, K)``: ``p(y | x) = softmax(f(x))[y]``. Read as an
  energy-based model (JEM, Grathwohl et al. 2020), the same logits define
  ``p(x, y) ∝ exp(f(x)[y])`` and ``E(x) = -logsumexp_y f(x)[y]`` (see
  :func:`umrf.losses.jem`).
* :class:`NoiseConditionalConvScore` is a U-Net-like noise-conditional score
  network ``s(x, σ) ≈ ∇ₓ log p_σ(x)`` for multi-noise denoising score
  matching and annealed Langevin sampling (NCSN, Song & Ermon 2019, 2020).
* :func:`nnx_logits` turns a classifier module into the pure
  ``logits_fn(params, x) -> (K,)`` on ONE image that umrf's JEM loss and
  energies take (the classifier counterpart of :func:`umrf.models.nnx_energy`).

**Convolutions as one matrix product.** Every layer is a 3×3 convolution
with padding 1 (stride 1 or 2) computed as *patches @ kernel*: the nine
shifted (strided) views of the padded input are concatenated along channels
and multiplied by the ``(9·C_in, C_out)`` kernel. For 8×8 images with tens
of channels this is several times faster on CPU than XLA's generic
convolution (measured with ``benchmarks/jem_throughput.py``'s network: a
20-step SGLD chain on a batch of 64 ran in about a third of the time), and
it is the same linear map as ``jax.lax.conv_general_dilated`` with
``padding=((1, 1), (1, 1))`` (the tests check this). Kernels have the
``(3, 3, C_in, C_out)`` layout of ``flax.nnx.Conv``.

The non-linearity defaults to :func:`umrf.models.silu`: Langevin sampling
and score matching differentiate these networks in their input, so a smooth
activation keeps ``∇ₓ`` informative.

References:
  Grathwohl et al., *Your classifier is secretly an energy based model and
  you should treat it like one*, ICLR 2020. Song & Ermon, *Improved
  techniques for training score-based generative models*, NeurIPS 2020.
  Karras et al., *Elucidating the design space of diffusion-based
  generative models*, NeurIPS 2022 (the preconditioning of the score U-Net).
  Ronneberger et al., *U-Net*, MICCAI 2015.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from umrf.models._activations import silu

__all__ = ["Conv3x3", "ConvClassifier", "NoiseConditionalConvScore", "nnx_logits"]

Activation = Callable[[jax.Array], jax.Array]


def _check_image_shape(image_shape: Sequence[int], num_down: int) -> tuple[int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 2 or any(s < 1 for s in shape):
        raise ValueError(f"`image_shape` must be (height, width) > 0; got {image_shape!r}.")
    factor = 2**num_down
    if any(s % factor for s in shape):
        raise ValueError(
            f"`image_shape` {shape} must be divisible by 2**(len(channels) - 1) = {factor} "
            "(each further channel stage halves the resolution); use fewer stages."
        )
    return shape


def _check_channels(channels: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(c) for c in channels)
    if not out or any(c < 1 for c in out):
        raise ValueError(
            f"`channels` must be a non-empty sequence of positive ints; got {channels!r}."
        )
    return out


def _images(x: jax.Array, image_shape: tuple[int, int], name: str) -> jax.Array:
    """``(B, H, W)`` -> ``(B, H, W, 1)``, with a clear error for anything else."""
    if x.ndim != 3 or tuple(x.shape[1:]) != image_shape:
        raise ValueError(
            f"{name} expects a batch of images of shape (B, {image_shape[0]}, {image_shape[1]}); "
            f"got {x.shape}. For one image use x[None]."
        )
    return x[..., None]


class Conv3x3(nnx.Module):
    """3×3 convolution, padding 1, stride 1 or 2, as one ``patches @ kernel`` product.

    ``y[b, i, j] = Σ_{di, dj, c} x_pad[b, s·i + di, s·j + dj, c] · K[di, dj, c] + bias``,
    the map of ``jax.lax.conv_general_dilated(x, K, (s, s), ((1, 1), (1, 1)))``
    (see the module docstring for why it is computed this way).

    Args:
      in_features: input channels.
      out_features: output channels.
      stride: keyword-only, 1 or 2.
      kernel_init: keyword-only initializer of the ``(3, 3, C_in, C_out)`` kernel
        (default: LeCun normal, as ``nnx.Conv``).
      rngs: keyword-only ``nnx.Rngs``.

    Call: ``(B, H, W, C_in) -> (B, ceil(H/s), ceil(W/s), C_out)``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> from flax import nnx
      >>> conv = umrf.models.Conv3x3(1, 4, stride=2, rngs=nnx.Rngs(0))
      >>> conv(jnp.zeros((2, 8, 8, 1))).shape
      (2, 4, 4, 4)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        stride: int = 1,
        kernel_init: Any = None,
        rngs: nnx.Rngs,
    ) -> None:
        if kernel_init is None:
            kernel_init = nnx.initializers.lecun_normal()
        if stride not in (1, 2):
            raise ValueError(f"`stride` must be 1 or 2; got {stride!r}.")
        self.kernel = nnx.Param(kernel_init(rngs.params(), (3, 3, in_features, out_features)))
        self.bias = nnx.Param(jnp.zeros((out_features,)))
        self.stride = stride

    def __call__(self, x: jax.Array) -> jax.Array:  # noqa: D102
        _, h, w, c = x.shape
        s = self.stride
        xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        patches = jnp.concatenate(
            [xp[:, di : di + h : s, dj : dj + w : s, :] for di in range(3) for dj in range(3)],
            axis=-1,
        )
        kernel = self.kernel[...].astype(x.dtype).reshape(9 * c, -1)
        return patches @ kernel + self.bias[...].astype(x.dtype)[None, None, None, :]


class ConvClassifier(nnx.Module):
    r"""Small CNN classifier whose logits are also an energy (JEM).

    Layers: a 3×3 stem convolution to ``channels[0]``; for every further
    entry ``c`` of ``channels`` a stride-2 convolution to ``c`` followed by a
    stride-1 convolution (the resolution halves); a dense hidden layer; a
    dense output to ``num_classes`` logits. No normalisation layers (JEM's
    advice: batch statistics break SGLD), a smooth activation.

    Args:
      num_classes: number of classes ``K``.
      image_shape: keyword-only ``(H, W)``, divisible by ``2**(len(channels)-1)``.
      channels: keyword-only channels per resolution.
      hidden_features: keyword-only width of the dense hidden layer.
      activation: keyword-only non-linearity (:func:`umrf.models.silu`).
      rngs: keyword-only ``nnx.Rngs``.

    Call: ``module(x)`` with ``x`` ``(B, H, W)`` returns logits ``(B, K)``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> from flax import nnx
      >>> net = umrf.models.ConvClassifier(10, rngs=nnx.Rngs(0))
      >>> net(jnp.zeros((3, 8, 8))).shape
      (3, 10)

    References:
      Grathwohl et al., ICLR 2020.
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        image_shape: Sequence[int] = (8, 8),
        channels: Sequence[int] = (32, 64),
        hidden_features: int = 128,
        activation: Activation = silu,
        rngs: nnx.Rngs,
    ) -> None:
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an int >= 2; got {num_classes!r}.")
        if not isinstance(hidden_features, int) or hidden_features < 1:
            raise ValueError(f"`hidden_features` must be a positive int; got {hidden_features!r}.")
        chans = _check_channels(channels)
        self.image_shape = _check_image_shape(image_shape, len(chans) - 1)
        convs = [Conv3x3(1, chans[0], rngs=rngs)]
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            convs.append(Conv3x3(c_in, c_out, stride=2, rngs=rngs))
            convs.append(Conv3x3(c_out, c_out, rngs=rngs))
        self.convs = nnx.List(convs)
        factor = 2 ** (len(chans) - 1)
        flat = (self.image_shape[0] // factor) * (self.image_shape[1] // factor) * chans[-1]
        self.hidden = nnx.Linear(flat, hidden_features, rngs=rngs)
        self.out = nnx.Linear(hidden_features, num_classes, rngs=rngs)
        self.activation = activation

    def __call__(self, x: jax.Array) -> jax.Array:  # noqa: D102
        h = _images(x, self.image_shape, "ConvClassifier")
        for conv in self.convs:
            h = self.activation(conv(h))
        h = self.activation(self.hidden(h.reshape(h.shape[0], -1)))
        return self.out(h)


class NoiseConditionalConvScore(nnx.Module):
    r"""U-Net-like noise-conditional score network ``s(x, σ)`` for small images.

    The network ``F`` is a U-Net: at each resolution two 3×3 convolutions
    whose first adds a learned per-channel embedding of the noise level,
    stride-2 convolutions down, nearest-neighbour upsampling with skip
    connections up. It is *preconditioned* as in Karras et al. (2022): with
    ``σ_d`` the data standard deviation,

    .. math::

       c_\mathrm{in} = (σ^2 + σ_d^2)^{-1/2},\quad
       c_\mathrm{skip} = \frac{σ_d^2}{σ^2 + σ_d^2},\quad
       c_\mathrm{out} = \frac{σ σ_d}{\sqrt{σ^2 + σ_d^2}},\quad
       c_\mathrm{noise} = \tfrac14 \log σ,

       D(x, σ) = c_\mathrm{skip}\, x + c_\mathrm{out}\, F(c_\mathrm{in} x, c_\mathrm{noise}),
       \qquad s(x, σ) = \frac{D(x, σ) - x}{σ^2}
              = -\frac{x}{σ^2 + σ_d^2} + \frac{σ_d}{σ\sqrt{σ^2 + σ_d^2}} F.

    ``D`` is a denoiser, and Tweedie's formula ``E[x₀ | x] = x + σ² ∇ log
    p_σ(x)`` makes ``s`` a score. The network's input and its regression
    target have unit scale at every ``σ`` (so one network serves noise
    levels from ``σ_max`` to ``σ_min``); the noise level enters through
    ``log σ`` (Fourier features of it, then a dense layer), and the last
    convolution is initialised at zero so training starts at ``D = c_skip x``,
    i.e. at the exact score ``-x/(σ² + σ_d²)`` of ``N(0, σ_d² I)`` data. The
    score is evaluated in the second form above, free of the cancellation
    in ``D - x`` that costs float32 digits at small ``σ``.

    Args:
      image_shape: keyword-only ``(H, W)``, divisible by ``2**(len(channels)-1)``.
      channels: keyword-only channels per resolution (the first at full size).
      embedding_features: keyword-only width of the noise embedding.
      sigma_data: keyword-only ``σ_d > 0`` (about the pixel standard deviation).
      activation: keyword-only non-linearity.
      rngs: keyword-only ``nnx.Rngs``.

    Call: ``module(x, sigma)`` with ``x`` ``(B, H, W)`` and ``sigma`` ``(B,)``
    returns the score ``(B, H, W)``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> from flax import nnx
      >>> net = umrf.models.NoiseConditionalConvScore(rngs=nnx.Rngs(0))
      >>> s = net(jnp.zeros((2, 8, 8)), jnp.array([1.0, 0.1]))
      >>> s.shape, float(jnp.abs(s).max())  # F starts at 0: D = c_skip·x = 0 at x = 0
      ((2, 8, 8), 0.0)

    References:
      Karras et al., NeurIPS 2022. Song & Ermon, NeurIPS 2020.
      Ronneberger et al., MICCAI 2015.
    """

    def __init__(
        self,
        *,
        image_shape: Sequence[int] = (8, 8),
        channels: Sequence[int] = (32, 64),
        embedding_features: int = 32,
        sigma_data: float = 0.5,
        activation: Activation = silu,
        rngs: nnx.Rngs,
    ) -> None:
        chans = _check_channels(channels)
        self.image_shape = _check_image_shape(image_shape, len(chans) - 1)
        if not isinstance(embedding_features, int) or embedding_features < 2:
            raise ValueError(
                f"`embedding_features` must be an int >= 2; got {embedding_features!r}."
            )
        if not sigma_data > 0:
            raise ValueError(f"`sigma_data` must be > 0; got {sigma_data!r}.")
        self.sigma_data = float(sigma_data)
        self.activation = activation
        half = embedding_features // 2
        self.num_frequencies = half
        self.embed = nnx.Linear(2 * half, embedding_features, rngs=rngs)
        down, down_emb, up, up_emb = [], [], [], []
        c_prev = 1
        for level, c in enumerate(chans):
            stride = 1 if level == 0 else 2
            down.append(
                nnx.List([Conv3x3(c_prev, c, stride=stride, rngs=rngs), Conv3x3(c, c, rngs=rngs)])
            )
            down_emb.append(nnx.Linear(embedding_features, c, rngs=rngs))
            c_prev = c
        for level in range(len(chans) - 2, -1, -1):
            c = chans[level]
            up.append(nnx.List([Conv3x3(c_prev + c, c, rngs=rngs), Conv3x3(c, c, rngs=rngs)]))
            up_emb.append(nnx.Linear(embedding_features, c, rngs=rngs))
            c_prev = c
        self.down, self.down_emb = nnx.List(down), nnx.List(down_emb)
        self.up, self.up_emb = nnx.List(up), nnx.List(up_emb)
        self.head = Conv3x3(c_prev, 1, kernel_init=nnx.initializers.zeros_init(), rngs=rngs)

    def _block(self, convs: Any, emb_layer: Any, h: jax.Array, emb: jax.Array) -> jax.Array:
        h = convs[0](h) + emb_layer(emb)[:, None, None, :]
        h = self.activation(h)
        return self.activation(convs[1](h))

    def _residual(self, x: jax.Array, sigma: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(F(c_in x, c_noise), σ² + σ_d²)`` with ``F`` of shape ``(B, H, W)``."""
        h = _images(x, self.image_shape, "NoiseConditionalConvScore")
        sigma = jnp.asarray(sigma, x.dtype)
        if sigma.shape != (x.shape[0],):
            raise ValueError(
                f"`sigma` must have shape (B,) = ({x.shape[0]},), one noise level per image; "
                f"got {sigma.shape}."
            )
        var = sigma**2 + self.sigma_data**2
        freqs = jnp.pi * jnp.arange(1, self.num_frequencies + 1, dtype=x.dtype)
        phase = (0.25 * jnp.log(sigma))[:, None] * freqs[None, :]
        emb = self.activation(self.embed(jnp.concatenate([jnp.sin(phase), jnp.cos(phase)], -1)))
        g = jax.lax.rsqrt(var)[:, None, None, None] * h
        skips = []
        for convs, emb_layer in zip(self.down, self.down_emb, strict=True):
            g = self._block(convs, emb_layer, g, emb)
            skips.append(g)
        skips.pop()
        for convs, emb_layer in zip(self.up, self.up_emb, strict=True):
            g = jnp.repeat(jnp.repeat(g, 2, axis=1), 2, axis=2)
            g = jnp.concatenate([g, skips.pop()], axis=-1)
            g = self._block(convs, emb_layer, g, emb)
        return self.head(g)[..., 0], var

    def denoise(self, x: jax.Array, sigma: jax.Array) -> jax.Array:
        """The denoiser ``D(x, σ) = c_skip x + c_out F(c_in x, c_noise)``, ``(B, H, W)``."""
        sigma = jnp.asarray(sigma, x.dtype)
        f, var = self._residual(x, sigma)
        c_skip = (self.sigma_data**2 / var)[:, None, None]
        c_out = (sigma * self.sigma_data * jax.lax.rsqrt(var))[:, None, None]
        return c_skip * x + c_out * f

    def __call__(self, x: jax.Array, sigma: jax.Array) -> jax.Array:  # noqa: D102
        # s = (D - x) / σ² = -x / (σ² + σ_d²) + σ_d / (σ sqrt(σ² + σ_d²)) · F, written without
        # the cancellation of D - x, which loses float32 digits at small σ.
        sigma = jnp.asarray(sigma, x.dtype)
        f, var = self._residual(x, sigma)
        gain = (self.sigma_data / sigma * jax.lax.rsqrt(var))[:, None, None]
        return -x / var[:, None, None] + gain * f


def nnx_logits(module: nnx.Module) -> tuple[Callable[[Any, Any], jax.Array], Any]:
    """Wrap an NNX classifier as ``(logits_fn, params)`` on ONE example.

    The module maps a batch ``(B, ...)`` to logits ``(B, K)``; the returned
    ``logits_fn(params, x)`` evaluates one example ``x`` and returns ``(K,)``
    (the callback shape of :func:`umrf.losses.jem` and its energies).
    ``params`` is the ``nnx.State`` of the module's ``nnx.Param`` variables.

    Args:
      module: a flax NNX module returning ``(B, K)`` logits.

    Returns:
      ``(logits_fn, params)``.

    Raises:
      TypeError: ``module`` is not an ``nnx.Module``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> from flax import nnx
      >>> logits_fn, params = umrf.models.nnx_logits(
      ...     umrf.models.ConvClassifier(10, rngs=nnx.Rngs(0)))
      >>> logits_fn(params, jnp.zeros((8, 8))).shape
      (10,)
    """
    if not isinstance(module, nnx.Module):
        raise TypeError(f"`module` must be a flax.nnx.Module; got {type(module).__name__}.")
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)

    def logits_fn(params: Any, x: Any) -> jax.Array:
        out = nnx.merge(graphdef, params, rest)(x[None])
        if out.ndim != 2:
            raise ValueError(
                f"the classifier must return logits of shape (B, K); got {out.shape} for a "
                "batch of one."
            )
        return out[0]

    return logits_fn, params
