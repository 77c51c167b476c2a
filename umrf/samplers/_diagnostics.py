"""MCMC convergence diagnostics over many chains: split R-hat and effective sample size.

Both take draws laid out as :func:`umrf.sample_chains` returns them,
``(num_draws, num_chains, *event)`` (``sample_axis=0``, ``chain_axis=1``), and
return one number per event entry (shape ``event``). Both are pure jnp and
jit-able.

**Split R-hat** (Gelman et al. 2013, BDA3 §11.4; Vehtari et al. 2021). Each
chain is cut in two halves (``m`` half-chains of length ``n``), then with the
between-chain variance ``B = n/(m-1) Σ_j (θ̄_j - θ̄)²`` and the mean
within-chain variance ``W``,

    var⁺ = (n - 1)/n · W + B/n,       R̂ = sqrt(var⁺ / W).

R̂ ≈ 1 for chains that agree; R̂ > 1.01 flags non-convergence (Vehtari et al.).
``rank_normalize=True`` first replaces draws by the normal scores of their
pooled ranks, ``Φ⁻¹((r - 3/8)/(S + 1/4))`` (Vehtari et al. 2021, eq. 14),
which makes R̂ robust to heavy tails.

**Effective sample size** (Geyer 1992; Vehtari et al. 2021, §3.2; as in
Stan). With the multi-chain autocorrelation estimate

    ρ̂_t = 1 - (W - mean_j γ̂_{j,t}) / var⁺

(``γ̂_{j,t}`` the autocovariance of chain ``j`` at lag ``t``, computed by FFT
with the biased ``1/n`` normalisation), sum Geyer's initial positive and
monotone sequence of pair sums ``P_k = ρ̂_{2k} + ρ̂_{2k+1}``:
``τ̂ = -1 + 2 Σ_k P_k`` and ``ESS = m·n / τ̂``. For iid draws ESS ≈ m·n; for
an AR(1) chain with coefficient ρ, ESS ≈ m·n (1 - ρ)/(1 + ρ).

References:
  Gelman, Carlin, Stern, Dunson, Vehtari & Rubin (2013), Bayesian Data Analysis, 3rd ed.
  Geyer (1992), "Practical Markov chain Monte Carlo", Statistical Science 7(4).
  Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization,
  folding, and localization: an improved R-hat", Bayesian Analysis 16(2).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri

__all__ = ["effective_sample_size", "split_rhat"]


def _to_chain_major(x: Any, sample_axis: int, chain_axis: int, min_draws: int) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            f"`samples` needs a draw axis and a chain axis; got shape {x.shape}. For one chain "
            "pass x[:, None]."
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    sample_axis %= x.ndim
    chain_axis %= x.ndim
    if sample_axis == chain_axis:
        raise ValueError("`sample_axis` and `chain_axis` must differ.")
    x = jnp.moveaxis(x, (chain_axis, sample_axis), (0, 1))  # (m, n, *event)
    if x.shape[1] < min_draws:
        raise ValueError(f"need at least {min_draws} draws per chain; got {x.shape[1]}.")
    return x


def _split(x: jax.Array) -> jax.Array:
    """(m, n, ...) -> (2m, n//2, ...): first and second halves (middle draw dropped if odd)."""
    half = x.shape[1] // 2
    return jnp.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _rank_normalize(x: jax.Array) -> jax.Array:
    """Normal scores of pooled ranks (average ranks are not needed for continuous draws)."""
    m, n = x.shape[:2]
    flat = x.reshape((m * n, -1))
    ranks = jnp.argsort(jnp.argsort(flat, axis=0), axis=0).astype(x.dtype) + 1.0
    z = ndtri((ranks - 0.375) / (m * n + 0.25))
    return z.reshape(x.shape)


def _variances(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(W, var⁺) for chain-major draws (m, n, ...)."""
    n = x.shape[1]
    chain_mean = jnp.mean(x, axis=1)
    w = jnp.mean(jnp.var(x, axis=1, ddof=1), axis=0)
    b_over_n = jnp.var(chain_mean, axis=0, ddof=1)
    return w, (n - 1) / n * w + b_over_n


def _defined(x: jax.Array, var_plus: jax.Array) -> jax.Array:
    """Whether a diagnostic is defined per event entry: finite draws that vary.

    Draws with NaN/inf, or with no variance at all, have no ESS or R̂ (Stan
    returns NaN there too). "No variance" is judged relative to the draws' own
    scale, since a fused mean may round.
    """
    scale = jnp.max(jnp.abs(x), axis=(0, 1))
    resolution = (8.0 * jnp.finfo(x.dtype).eps * scale) ** 2
    return jnp.all(jnp.isfinite(x), axis=(0, 1)) & (var_plus > resolution)


def split_rhat(
    samples: Any, *, sample_axis: int = 0, chain_axis: int = 1, rank_normalize: bool = False
) -> jax.Array:
    """Split potential scale reduction factor R̂ (Gelman et al. 2013; Vehtari et al. 2021).

    Args:
      samples: draws of shape ``(num_draws, num_chains, *event)`` by default.
      sample_axis: axis of the draws within a chain.
      chain_axis: axis of the chains.
      rank_normalize: apply the rank-normal transform first (Vehtari et al. 2021).

    Returns:
      R̂ per event entry (shape ``event``); values near 1 mean the chains agree.
      NaN for an entry whose draws contain NaN/inf or do not vary.

    Examples:
      >>> import jax, umrf
      >>> draws = jax.random.normal(jax.random.key(0), (500, 4))
      >>> bool(abs(umrf.samplers.split_rhat(draws) - 1.0) < 0.01)
      True
    """
    x = _to_chain_major(samples, sample_axis, chain_axis, min_draws=4)
    return _split_rhat(x, rank_normalize)


@functools.partial(jax.jit, static_argnums=1)
def _split_rhat(x: jax.Array, rank_normalize: bool) -> jax.Array:
    x = _split(x)
    defined = _defined(x, _variances(x)[1])  # judged on the draws, not on their ranks
    if rank_normalize:
        x = _rank_normalize(x)
    w, var_plus = _variances(x)
    return jnp.where(defined, jnp.sqrt(var_plus / w), jnp.nan)


def _autocovariance(x: jax.Array) -> jax.Array:
    """Biased autocovariance along axis 1 of (m, n, ...) by FFT; same shape."""
    n = x.shape[1]
    centred = x - jnp.mean(x, axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    f = jnp.fft.rfft(centred, n=size, axis=1)
    acov = jnp.fft.irfft(f * jnp.conj(f), n=size, axis=1)[:, :n]
    return acov / n


def effective_sample_size(samples: Any, *, sample_axis: int = 0, chain_axis: int = 1) -> jax.Array:
    """Multi-chain effective sample size with Geyer's initial monotone sequence.

    Args:
      samples: draws of shape ``(num_draws, num_chains, *event)`` by default
        (at least 4 draws per chain).
      sample_axis: axis of the draws within a chain.
      chain_axis: axis of the chains.

    Returns:
      ESS per event entry (shape ``event``), between about 1 and
      ``num_chains·num_draws·log10(num_chains·num_draws)`` (Stan's cap for
      antithetic chains); NaN for an entry whose draws contain NaN/inf or do
      not vary at all (the ESS is undefined there).

    Examples:
      >>> import jax, umrf
      >>> draws = jax.random.normal(jax.random.key(0), (1000, 4))
      >>> 3600 < float(umrf.samplers.effective_sample_size(draws)) < 4400
      True
    """
    return _ess(_to_chain_major(samples, sample_axis, chain_axis, min_draws=4))


@jax.jit
def _ess(x: jax.Array) -> jax.Array:
    m, n = x.shape[:2]
    acov = _autocovariance(x)  # (m, n, ...)
    w, var_plus = _variances(x)
    rho = 1.0 - (w[None] - jnp.mean(acov, axis=0)) / var_plus[None]  # (n, ...), rho[0] ≈ 1
    pairs = n // 2
    p = rho[0 : 2 * pairs : 2] + rho[1 : 2 * pairs : 2]  # (pairs, ...)
    positive = jnp.cumprod(p > 0, axis=0).astype(bool)  # initial positive sequence
    monotone = jax.lax.cummin(jnp.where(positive, p, jnp.inf), axis=0)  # initial monotone
    tau = -1.0 + 2.0 * jnp.sum(jnp.where(positive, monotone, 0.0), axis=0)
    total = m * n
    tau = jnp.maximum(tau, 1.0 / jnp.log10(float(total)))
    # Undefined, not maximal (the cap above would report a perfect ESS).
    return jnp.where(_defined(x, var_plus), total / tau, jnp.nan)
