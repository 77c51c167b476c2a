"""Neural energies and score networks: a flax NNX adapter and small MLPs.

umrf's losses and samplers take pure functions ``energy_fn(params, x)`` on ONE
configuration with ``params`` a pytree (DESIGN.md §1). :func:`nnx_energy` and
:func:`nnx_score` turn a flax NNX module into such a function and its
parameter pytree with ``nnx.split``/``nnx.merge``: the module is called on a
batch of one (``x[None]``), so modules written for batches ``(B, d)`` work,
and ``jax.vmap`` over the returned function batches them again. Modules must
be pure at call time (no dropout RNG, no batch-statistics updates); non-
parameter variables are captured as constants.

To copy trained parameters back into the module use
``nnx.update(module, params)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from umrf.models._activations import silu

EnergyFn = Callable[..., jax.Array]


def _split(module: Any, name: str) -> tuple[Any, Any, Any]:
    if not isinstance(module, nnx.Module):
        raise TypeError(f"`{name}` must be a flax.nnx.Module; got {type(module).__name__}.")
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return graphdef, params, rest


def nnx_energy(module: nnx.Module, *, noise_conditional: bool = False) -> tuple[EnergyFn, Any]:
    """Wrap an NNX energy module as ``(energy_fn, params)``.

    The module maps a batch ``(B, *event_shape)`` (and, when
    ``noise_conditional``, noise levels ``(B,)``) to energies of shape
    ``(B,)`` or ``(B, 1)``. The returned ``energy_fn(params, x)`` (or
    ``energy_fn(params, x, sigma)``) evaluates ONE configuration and returns
    a scalar, so it fits every umrf sampler and loss; ``params`` is the
    ``nnx.State`` of the module's ``nnx.Param`` variables, a pytree that
    optax updates directly.

    Args:
      module: a flax NNX module.
      noise_conditional: keyword-only; the module takes ``(x, sigma)``.

    Returns:
      ``(energy_fn, params)``.

    Raises:
      TypeError: ``module`` is not an ``nnx.Module``.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> from flax import nnx
      >>> energy_fn, params = umrf.models.nnx_energy(
      ...     umrf.models.MLPEnergy(2, (16,), rngs=nnx.Rngs(0)))
      >>> jax.vmap(energy_fn, in_axes=(None, 0))(params, jnp.zeros((5, 2))).shape
      (5,)
    """
    graphdef, _params, rest = _split(module, "module")

    def _scalar(out: jax.Array) -> jax.Array:
        if out.size != 1:
            raise ValueError(
                "the energy module must return one energy per example, shape (B,) or (B, 1); "
                f"got shape {out.shape} for a batch of one."
            )
        return out.reshape(())

    if noise_conditional:

        def energy_fn(params: Any, x: Any, sigma: Any) -> jax.Array:
            model = nnx.merge(graphdef, params, rest)
            return _scalar(model(x[None], jnp.reshape(sigma, (1,))))

    else:

        def energy_fn(params: Any, x: Any) -> jax.Array:
            model = nnx.merge(graphdef, params, rest)
            return _scalar(model(x[None]))

    return energy_fn, _params


def nnx_score(module: nnx.Module, *, noise_conditional: bool = True) -> tuple[EnergyFn, Any]:
    """Wrap an NNX score network as ``(score_fn, params)``.

    The module maps ``(B, *event_shape)`` (and ``(B,)`` noise levels) to
    scores of shape ``(B, *event_shape)``. The returned
    ``score_fn(params, x, sigma)`` (or ``score_fn(params, x)`` with
    ``noise_conditional=False``) evaluates ONE configuration, as
    ``umrf.losses.multiscale_denoising_score_matching`` and
    ``umrf.samplers.annealed_langevin`` expect.

    Args:
      module: a flax NNX module.
      noise_conditional: keyword-only; the module takes ``(x, sigma)``.

    Returns:
      ``(score_fn, params)``.

    Raises:
      TypeError: ``module`` is not an ``nnx.Module``.
    """
    graphdef, _params, rest = _split(module, "module")

    if noise_conditional:

        def score_fn(params: Any, x: Any, sigma: Any) -> jax.Array:
            model = nnx.merge(graphdef, params, rest)
            return model(x[None], jnp.reshape(sigma, (1,)))[0]

    else:

        def score_fn(params: Any, x: Any) -> jax.Array:
            model = nnx.merge(graphdef, params, rest)
            return model(x[None])[0]

    return score_fn, _params


def _mlp(sizes: Sequence[int], rngs: nnx.Rngs) -> nnx.List:
    return nnx.List(
        [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    )


class FourierFrequencies(nnx.Variable):
    """Fixed (non-trainable) random frequencies of a Fourier-feature embedding."""


def _fourier(in_features: int, num: int, scale: float, rngs: nnx.Rngs) -> Any:
    if not isinstance(num, int) or num < 0:
        raise ValueError(f"`fourier_features` must be an int >= 0; got {num!r}.")
    if not scale > 0:
        raise ValueError(f"`fourier_scale` must be > 0; got {scale!r}.")
    if num == 0:
        return None
    return FourierFrequencies(scale * jax.random.normal(rngs.params(), (in_features, num)))


def _embed(x: jax.Array, freqs: Any) -> jax.Array:
    """``[x, sin(xB), cos(xB)]`` (Tancik et al. 2020), or ``x`` without features."""
    if freqs is None:
        return x
    z = x @ freqs[...].astype(x.dtype)
    return jnp.concatenate([x, jnp.sin(z), jnp.cos(z)], axis=-1)


def _check_sizes(in_features: int, hidden_features: Sequence[int]) -> tuple[int, ...]:
    if not isinstance(in_features, int) or in_features < 1:
        raise ValueError(f"`in_features` must be a positive int; got {in_features!r}.")
    hidden = tuple(int(h) for h in hidden_features)
    if not hidden or any(h < 1 for h in hidden):
        raise ValueError(
            "`hidden_features` must be a non-empty sequence of positive ints; "
            f"got {hidden_features!r}."
        )
    return hidden


class MLPEnergy(nnx.Module):
    r"""MLP energy ``E(x) = MLP(x) + ½ γ ‖x‖²`` on flat vectors.

    A smooth activation (default :func:`umrf.models.silu`, SiLU/swish) keeps ``∇ₓE`` and ``∇²ₓE``
    informative, which Langevin sampling and score matching need. The
    optional confinement ``γ > 0`` makes ``exp(-E)`` normalisable whatever
    the network does far from the data and stops Langevin chains from
    drifting away during persistent-CD training.

    Args:
      in_features: dimension ``d`` of one configuration.
      hidden_features: widths of the hidden layers.
      activation: keyword-only elementwise non-linearity.
      confinement: keyword-only ``γ >= 0``.
      fourier_features: keyword-only number ``m`` of random Fourier features
        ``[sin(xB), cos(xB)]``, ``B ∼ N(0, s²)`` of shape ``(d, m)``, fixed at
        initialisation and appended to ``x`` (0: none). They let a small MLP
        fit sharp, high-frequency structure (Tancik et al. 2020).
      fourier_scale: keyword-only frequency scale ``s > 0`` (in units of 1/x).
      rngs: keyword-only ``nnx.Rngs`` for initialisation.

    Call: ``module(x)`` with ``x`` of shape ``(B, d)`` returns ``(B,)``.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: Sequence[int] = (128, 128),
        *,
        activation: Callable[[jax.Array], jax.Array] = silu,
        confinement: float = 0.0,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        rngs: nnx.Rngs,
    ) -> None:
        hidden = _check_sizes(in_features, hidden_features)
        if not confinement >= 0:
            raise ValueError(f"`confinement` must be >= 0; got {confinement!r}.")
        self.freqs = _fourier(in_features, fourier_features, fourier_scale, rngs)
        self.layers = _mlp((in_features + 2 * fourier_features, *hidden, 1), rngs)
        self.activation = activation
        self.confinement = float(confinement)

    def __call__(self, x: jax.Array) -> jax.Array:  # noqa: D102
        h = _embed(x, self.freqs)
        for layer in self.layers[:-1]:
            h = self.activation(layer(h))
        out = self.layers[-1](h)[..., 0]
        if self.confinement:
            out = out + 0.5 * self.confinement * jnp.sum(x**2, axis=-1)
        return out


class NoiseConditionalMLPEnergy(nnx.Module):
    r"""Noise-conditional MLP energy ``E(x, σ) = MLP([x, log σ]) / σ``.

    Its score ``-∇ₓE(x, σ)`` is a conservative noise-conditional score for
    multi-noise denoising score matching and annealed Langevin sampling.
    Dividing by ``σ`` follows the output scaling of NCSNv2 (Song & Ermon
    2020), since the target score grows like ``1/σ``.

    Args:
      in_features: dimension ``d``.
      hidden_features: hidden widths.
      activation: keyword-only non-linearity (smooth by default).
      fourier_features: keyword-only number ``m`` of random Fourier features
        ``[sin(xB), cos(xB)]``, ``B ∼ N(0, s²)`` of shape ``(d, m)``, fixed at
        initialisation and appended to ``x`` (0: none). They let a small MLP
        fit sharp, high-frequency structure (Tancik et al. 2020).
      fourier_scale: keyword-only frequency scale ``s > 0`` (in units of 1/x).
      rngs: keyword-only ``nnx.Rngs``.

    Call: ``module(x, sigma)`` with ``x`` ``(B, d)`` and ``sigma`` ``(B,)`` returns ``(B,)``.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: Sequence[int] = (128, 128),
        *,
        activation: Callable[[jax.Array], jax.Array] = silu,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        rngs: nnx.Rngs,
    ) -> None:
        hidden = _check_sizes(in_features, hidden_features)
        self.freqs = _fourier(in_features, fourier_features, fourier_scale, rngs)
        self.layers = _mlp((in_features + 2 * fourier_features + 1, *hidden, 1), rngs)
        self.activation = activation

    def __call__(self, x: jax.Array, sigma: jax.Array) -> jax.Array:  # noqa: D102
        sigma = jnp.asarray(sigma, x.dtype)
        h = jnp.concatenate([_embed(x, self.freqs), jnp.log(sigma)[:, None]], axis=-1)
        for layer in self.layers[:-1]:
            h = self.activation(layer(h))
        return self.layers[-1](h)[..., 0] / sigma


class MLPScore(nnx.Module):
    """MLP score network ``s(x) = MLP(x)`` with output dimension ``d`` (not conservative).

    Args:
      in_features: dimension ``d``.
      hidden_features: hidden widths.
      activation: keyword-only non-linearity.
      fourier_features: keyword-only number ``m`` of random Fourier features
        ``[sin(xB), cos(xB)]``, ``B ∼ N(0, s²)`` of shape ``(d, m)``, fixed at
        initialisation and appended to ``x`` (0: none). They let a small MLP
        fit sharp, high-frequency structure (Tancik et al. 2020).
      fourier_scale: keyword-only frequency scale ``s > 0`` (in units of 1/x).
      rngs: keyword-only ``nnx.Rngs``.

    Call: ``module(x)`` with ``x`` ``(B, d)`` returns ``(B, d)``.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: Sequence[int] = (128, 128),
        *,
        activation: Callable[[jax.Array], jax.Array] = silu,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        rngs: nnx.Rngs,
    ) -> None:
        hidden = _check_sizes(in_features, hidden_features)
        self.freqs = _fourier(in_features, fourier_features, fourier_scale, rngs)
        self.layers = _mlp((in_features + 2 * fourier_features, *hidden, in_features), rngs)
        self.activation = activation

    def __call__(self, x: jax.Array) -> jax.Array:  # noqa: D102
        h = _embed(x, self.freqs)
        for layer in self.layers[:-1]:
            h = self.activation(layer(h))
        return self.layers[-1](h)


class NoiseConditionalMLPScore(nnx.Module):
    r"""Noise-conditional score network ``s(x, σ) = MLP([x, log σ]) / σ`` (NCSNv2 scaling).

    Args:
      in_features: dimension ``d``.
      hidden_features: hidden widths.
      activation: keyword-only non-linearity.
      fourier_features: keyword-only number ``m`` of random Fourier features
        ``[sin(xB), cos(xB)]``, ``B ∼ N(0, s²)`` of shape ``(d, m)``, fixed at
        initialisation and appended to ``x`` (0: none). They let a small MLP
        fit sharp, high-frequency structure (Tancik et al. 2020).
      fourier_scale: keyword-only frequency scale ``s > 0`` (in units of 1/x).
      rngs: keyword-only ``nnx.Rngs``.

    Call: ``module(x, sigma)`` with ``x`` ``(B, d)``, ``sigma`` ``(B,)`` returns ``(B, d)``.

    References:
      Song & Ermon, *Improved techniques for training score-based generative
      models*, NeurIPS 2020.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: Sequence[int] = (128, 128),
        *,
        activation: Callable[[jax.Array], jax.Array] = silu,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        rngs: nnx.Rngs,
    ) -> None:
        hidden = _check_sizes(in_features, hidden_features)
        self.freqs = _fourier(in_features, fourier_features, fourier_scale, rngs)
        self.layers = _mlp((in_features + 2 * fourier_features + 1, *hidden, in_features), rngs)
        self.activation = activation

    def __call__(self, x: jax.Array, sigma: jax.Array) -> jax.Array:  # noqa: D102
        sigma = jnp.asarray(sigma, x.dtype)
        h = jnp.concatenate([_embed(x, self.freqs), jnp.log(sigma)[:, None]], axis=-1)
        for layer in self.layers[:-1]:
            h = self.activation(layer(h))
        return self.layers[-1](h) / sigma[:, None]
