"""Annealed Langevin dynamics for noise-conditional score models (NCSN).

Song & Ermon (2019), Algorithm 1. Given a noise-conditional score
``s(params, x, σ) ≈ ∇ₓ log p_σ(x)`` (``p_σ`` = data convolved with
``N(0, σ²I)``) and noise levels ``σ_1 > σ_2 > ... > σ_L``:

    for i = 1..L:
        α_i = eps · σ_i² / σ_L²
        repeat steps_per_level times:
            z ~ N(0, I)
            x ← x + (α_i / 2) · s(params, x, σ_i) + sqrt(α_i) · z

**Convention.** This is the paper's Algorithm 1 verbatim: the drift is
``α_i/2 · s`` and the noise ``sqrt(α_i)``, i.e. Langevin with step
``τ_i = α_i / 2`` in umrf's ULA convention (``x + τ s + sqrt(2τ) z``).
Published NCSN code (and some libraries) write ``x + α s + sqrt(2α) z``,
which is the same update with ``eps`` doubled: to reproduce a setting given
in that convention pass ``eps = 2 · eps_code``.

**Shape.** One ``step`` of this algorithm is one *full annealing pass*
(``L · steps_per_level`` Langevin updates, an inner ``lax.scan`` over
levels), so the algorithm is a Markov kernel on positions with the same
``SamplingAlgorithm`` shape as every other sampler, and

    final, trace = umrf.sample_chains(alg, key, params, x0, num_steps=1)

turns initial noise ``x0`` into samples ``final.position``. With
``num_steps > 1`` each pass restarts the annealing from the previous pass's
output (``trace.position[k]`` are the samples after pass ``k+1``).

A :class:`~umrf.samplers.Clamped` position anneals only the free
coordinates (the score is evaluated on the whole configuration; observed
coordinates are never moved).

References:
  Song & Ermon (2019), "Generative Modeling by Estimating Gradients of the
  Data Distribution", NeurIPS. Algorithm 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import check_callable, check_positive_int, static_positive_scalar
from umrf.samplers import _langevin
from umrf.samplers._base import SamplingAlgorithm, bind

__all__ = [
    "AnnealedLangevinInfo",
    "AnnealedLangevinState",
    "annealed_langevin",
    "build_kernel",
    "init",
]

ScoreFn = Callable[[Any, Any, Any], Any]


class AnnealedLangevinState(NamedTuple):
    """State of one chain: only its ``position`` (nothing to cache across passes)."""

    position: Any


class AnnealedLangevinInfo(NamedTuple):
    """Diagnostics of one annealing pass.

    Attributes:
      acceptance_rate: always 1 (no accept/reject step); present so every
        umrf sampler's Info has the same fields.
      diverged: True when the position after the pass (hence some score or
        intermediate position) is NaN or infinite. Nothing is replaced.
    """

    acceptance_rate: jax.Array
    diverged: jax.Array


def init(position: Any, params: Any = None) -> AnnealedLangevinState:
    """Create the state of one chain at ``position`` (``params`` unused).

    Args:
      position: one configuration ``x`` (floating array or pytree), or a
        :class:`~umrf.samplers.Clamped` ``(value, observed)`` pair.
      params: ignored; present for the common ``init(x, params)`` shape.

    Returns:
      An :class:`AnnealedLangevinState`.
    """
    del params
    _langevin.check_float_position(position)
    return AnnealedLangevinState(position)


def _annealed_step(
    key: jax.Array,
    state: AnnealedLangevinState,
    params: Any,
    *,
    score_fn: ScoreFn,
    sigmas: tuple[float, ...],
    steps_per_level: int,
    eps: Any,
    denoise: bool = False,
) -> tuple[AnnealedLangevinState, AnnealedLangevinInfo]:
    value, free = _langevin.split(state.position)
    leaves = jax.tree_util.tree_leaves(value)
    dtype = jnp.result_type(*leaves)
    sig = jnp.asarray(sigmas, dtype)
    alphas = eps * jnp.square(sig) / (sigmas[-1] ** 2)
    level_keys = jax.random.split(key, len(sigmas))
    _langevin.check_score_shape(
        jax.eval_shape(score_fn, params, value, sig[0]), value, "score_fn(params, x, sigma)"
    )

    def level(x: Any, xs: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[Any, None]:
        sigma, alpha, level_key = xs
        half, scale = 0.5 * alpha, jnp.sqrt(alpha)

        def inner(j: jax.Array, x: Any) -> Any:
            z = _langevin.normal_like(jax.random.fold_in(level_key, j), x)
            s = score_fn(params, x, sigma)
            return _langevin.move(x, s, z, half, scale, free)

        return jax.lax.fori_loop(0, steps_per_level, inner, x), None

    new_value, _ = jax.lax.scan(level, value, (sig, alphas, level_keys))
    if denoise:  # Tweedie: E[x_0 | x] = x + σ_L² ∇ log p_σL(x), on free coordinates only
        s_last = score_fn(params, new_value, sig[-1])
        denoised = jax.tree_util.tree_map(lambda a, b: a + sig[-1] ** 2 * b, new_value, s_last)
        if free is not None:
            denoised = jax.tree_util.tree_map(jnp.where, free, denoised, new_value)
        new_value = denoised
    diverged = ~_langevin.all_finite(new_value)
    info = AnnealedLangevinInfo(acceptance_rate=jnp.ones((), dtype), diverged=diverged)
    return AnnealedLangevinState(_langevin.rejoin(state.position, new_value)), info


def build_kernel(
    score_fn: ScoreFn, *, sigmas: Sequence[float], steps_per_level: int
) -> Callable[[jax.Array, AnnealedLangevinState, Any, Any], Any]:
    """Return ``kernel(key, state, params, eps)``: one full annealing pass.

    Args:
      score_fn: ``score_fn(params, x, sigma)`` returning the noise-conditional
        score with the structure of ``x``.
      sigmas: decreasing positive noise levels ``σ_1 > ... > σ_L``.
      steps_per_level: Langevin updates per level ``T``.

    Returns:
      ``kernel(key, state, params, eps) -> (state, info)``; ``eps`` may be traced.
    """
    check_callable("score_fn", score_fn, "score_fn(params, x, sigma)")
    sig = _check_sigmas(sigmas)
    steps_per_level = check_positive_int("steps_per_level", steps_per_level)

    def kernel(key: jax.Array, state: AnnealedLangevinState, params: Any, eps: Any) -> Any:
        return _annealed_step(
            key,
            state,
            params,
            score_fn=score_fn,
            sigmas=sig,
            steps_per_level=steps_per_level,
            eps=eps,
        )

    return kernel


def _check_sigmas(sigmas: Any) -> tuple[float, ...]:
    if isinstance(sigmas, jax.core.Tracer):
        raise TypeError(
            "`sigmas` must be concrete (a list/tuple/array of floats), since the number of "
            "levels fixes the program; build the sampler outside jit."
        )
    arr = np.asarray(sigmas, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`sigmas` must be a non-empty 1-D sequence; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"`sigmas` must be finite and > 0; got {arr.tolist()}.")
    if arr.size > 1 and not np.all(np.diff(arr) < 0):
        raise ValueError(
            f"`sigmas` must be strictly decreasing (largest noise first); got {arr.tolist()}. "
            "Sort them, e.g. np.geomspace(sigma_max, sigma_min, L)."
        )
    return tuple(float(s) for s in arr)


def annealed_langevin(
    score_fn: ScoreFn,
    *,
    sigmas: Sequence[float],
    steps_per_level: int,
    eps: float,
    denoise: bool = False,
) -> SamplingAlgorithm:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    Update at level ``i`` (``α_i = eps·σ_i²/σ_L²``, paper convention, see the
    module docstring for the factor-2 difference with published code):

        x ← x + (α_i / 2) · score_fn(params, x, σ_i) + sqrt(α_i) · z,   z ~ N(0, I).

    One ``step`` is one full pass over all levels (``len(sigmas) ·
    steps_per_level`` updates), so ``umrf.sample_chains(alg, key,
    params, x0, num_steps=1)`` maps initial noise to samples.

    Args:
      score_fn: ``score_fn(params, x, sigma)`` on one configuration, returning
        an estimate of ``∇ₓ log p_σ(x)`` with the structure of ``x``.
      sigmas: keyword-only, strictly decreasing noise levels ``σ_1 > ... > σ_L > 0``.
      steps_per_level: keyword-only ``T ≥ 1`` updates per level.
      eps: keyword-only base step size ``ε > 0`` (the step at the smallest
        level is ``ε``).
      denoise: keyword-only; end every pass with the denoising step
        ``x ← x + σ_L² · score_fn(params, x, σ_L)`` (free coordinates only).
        Annealed Langevin ends at samples of ``p_σL``, the data blurred by
        ``N(0, σ_L² I)``; by Tweedie's formula this step maps them to
        ``E[x_0 | x]``, removing the remaining noise (Song & Ermon 2020;
        Jolicoeur-Martineau et al. 2021). It costs one score evaluation.

    Returns:
      ``SamplingAlgorithm(init, step)`` with ``init(x, params)`` and
      ``step(key, state, params) -> (AnnealedLangevinState, AnnealedLangevinInfo)``.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> score = lambda p, x, s: -x / (1.0 + s**2)       # data N(0, I)
      >>> alg = umrf.samplers.annealed_langevin(
      ...     score, sigmas=[1.0, 0.1], steps_per_level=10, eps=0.01)
      >>> state, info = alg.step(jax.random.key(0), alg.init(jnp.zeros(2), None), None)
      >>> state.position.shape
      (2,)

    References:
      Song & Ermon (2019), NeurIPS, Algorithm 1.
    """
    check_callable("score_fn", score_fn, "score_fn(params, x, sigma)")
    sig = _check_sigmas(sigmas)
    steps_per_level = check_positive_int("steps_per_level", steps_per_level)
    eps = static_positive_scalar("eps", eps)
    if not isinstance(denoise, bool):
        raise TypeError(f"`denoise` must be a bool; got {type(denoise).__name__}.")
    return SamplingAlgorithm(
        init=bind(init),
        step=bind(
            _annealed_step,
            score_fn=score_fn,
            sigmas=sig,
            steps_per_level=steps_per_level,
            eps=eps,
            denoise=denoise,
        ),
    )
