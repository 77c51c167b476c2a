r"""Annealed importance sampling (AIS): ``log Z`` of any energy with a tractable base.

AIS (Neal 2001) moves ``N`` independent samples from a base distribution
``p_0 = f_0 / Z_0`` with known ``Z_0`` through a sequence of unnormalised
densities ``f_{β_0}, f_{β_1}, …, f_{β_K}`` (``0 = β_0 < β_1 < … < β_K = 1``,
``f_1 = exp(-E)`` the target). Chain ``n`` starts at ``x_0 ~ p_0``; at
temperature ``k`` it adds the log-weight increment
``log f_{β_k}(x) - log f_{β_{k-1}}(x)`` and then takes ``num_steps`` steps of
a Markov kernel that leaves ``f_{β_k}`` invariant. With ``w_n`` the final
weights,

    Ẑ = Z_0 · (1/N) Σ_n w_n,      E[Ẑ] = Z exactly,

so ``log Ẑ`` is a consistent, slightly downward-biased (Jensen) estimate of
``log Z``. Reported next to it (:class:`AISResult`):

* the standard error of ``log Ẑ`` by the delta method,
  ``se = std(w) / (√N · mean(w))``, computed stably in log space;
* the effective sample size ``ESS = (Σ w)² / Σ w²`` (``N`` for equal weights;
  a small ESS means the SE is unreliable: use more temperatures);
* the log-weights themselves, and the final samples (approximately from the
  target).

**Paths.** A path object says what ``f_β``, the base and the kernel's
parameters are (the protocol: ``sample_base(key, params, num)``,
``log_partition_base(params)``, ``kernel_params(params, beta)``,
``log_weight_increment(params, beta_prev, beta, x)``):

* :func:`geometric_path` — ``f_β = p_0^{1-β} · exp(-E)^β``, i.e. the energy
  ``E_β = (1-β) E_0 + β E``, for any energy with a tractable base: a
  :class:`~umrf.models.Gaussian` for continuous energies, a
  :class:`~umrf.models.FactorizedBernoulli` /
  :class:`~umrf.models.FactorizedCategorical` for discrete ones. The kernel is
  ANY umrf sampler built on ``path.energy`` (``mala``, ``ula`` for
  continuous; ``gwg``, ``dmala`` for discrete), whose params are the
  :class:`AnnealedParams` ``(params, base, beta)``.
* :func:`rbm_base_rate_path` — Salakhutdinov & Murray's (2008) path for a
  :class:`~umrf.models.BernoulliRBM`: a "base-rate" RBM with no weights and the
  data's visible log-odds as biases, annealed in the joint ``(v, h)``
  space, so every intermediate model is itself an RBM
  ``(βW, (1-β) b_A + β b, β c)``, sampled exactly by block Gibbs
  (``umrf.samplers.gibbs(rbm)``), with the hidden layer summed out in the
  weights.

Random numbers: the base draw uses ``split(key)[0]``; the transitions use the
one key schedule of every multi-chain runner (``umrf._chain_loop``) with step index
``k · num_steps + s``.

References:
  R. M. Neal, "Annealed importance sampling", Statistics and Computing 11,
  2001. R. Salakhutdinov, I. Murray, "On the quantitative analysis of deep
  belief networks", ICML 2008. R. B. Grosse, Z. Ghahramani, R. P. Adams,
  "Sandwiching the marginal likelihood using bidirectional Monte Carlo",
  arXiv:1511.02543, 2015 (the sigmoid schedule).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._bind import bind
from umrf._chain_loop import chain_keys, scan_steps
from umrf._validation import check_callable, check_key, check_num_categories, check_positive_int
from umrf.models import BernoulliRBM, encode_states
from umrf.samplers import SamplingAlgorithm

__all__ = [
    "AISResult",
    "AnnealedParams",
    "GeometricPath",
    "RBMBaseRatePath",
    "ais",
    "ais_betas",
    "geometric_path",
    "rbm_base_rate_path",
]

EnergyFn = Callable[[Any, Any], jax.Array]


class AISResult(NamedTuple):
    """What :func:`ais` returns.

    Attributes:
      log_z: the estimate ``log Ẑ = log Z_0 + log mean(w)``.
      log_z_stderr: delta-method standard error of ``log_z``.
      log_weights: ``(N,)`` final log importance weights ``log w_n``.
      ess: effective sample size ``(Σw)²/Σw²`` of the weights.
      log_z_base: ``log Z_0`` of the base.
      samples: the chains' final positions (approximate target samples).
      acceptance_rate: mean acceptance rate of the kernel over all steps.
      num_diverged: chains whose kernel reported a divergence at some step
        (their weights are kept as computed; a NaN weight makes ``log_z`` NaN).
    """

    log_z: jax.Array
    log_z_stderr: jax.Array
    log_weights: jax.Array
    ess: jax.Array
    log_z_base: jax.Array
    samples: Any
    acceptance_rate: jax.Array
    num_diverged: jax.Array


class AnnealedParams(NamedTuple):
    """The kernel's params on a :func:`geometric_path`: the target's, the base, and ``β``."""

    params: Any
    base: Any
    beta: jax.Array


# --------------------------------------------------------------------------- geometric path


def _encode(x: Any, num_categories: Any) -> Any:
    if num_categories is None and jnp.issubdtype(jnp.result_type(x), jnp.floating):
        return x
    return encode_states(x, num_categories)


def _scaled(beta: jax.Array, energy: jax.Array) -> jax.Array:
    """``β·E`` with ``0·(±inf) = 0`` (at β = 0 a hard zero of the target does not count yet)."""
    return jnp.where(beta > 0, beta * energy, jnp.zeros_like(energy))


def _geometric_energy(path_params: AnnealedParams, x: Any, *, energy_fn: EnergyFn) -> jax.Array:
    beta = jnp.asarray(path_params.beta)
    e_target = energy_fn(path_params.params, x)
    e_base = path_params.base.energy(x)
    return _scaled(1.0 - beta, e_base) + _scaled(beta, e_target)


@jax.tree_util.register_pytree_node_class
class GeometricPath:
    """The geometric path ``E_β = (1-β) E_base + β E`` (see :func:`geometric_path`).

    Attributes:
      base: the base model (a pytree with ``energy``, ``log_partition``, ``sample``).
      energy_fn: the target energy ``energy_fn(params, x_encoded)``.
      num_categories: the encoding of discrete positions (``None``: as is).
      energy: the annealed energy ``energy(AnnealedParams, x_encoded)`` to
        build the kernel on (value-equal for equal ``energy_fn``).
    """

    def __init__(self, energy_fn: EnergyFn, base: Any, num_categories: Any = None):
        self.energy_fn = energy_fn
        self.base = base
        self.num_categories = num_categories

    def tree_flatten(self):  # noqa: D102
        return (self.base,), (self.energy_fn, self.num_categories)

    @classmethod
    def tree_unflatten(cls, aux, children):  # noqa: D102
        return cls(aux[0], children[0], aux[1])

    def __repr__(self) -> str:
        return f"GeometricPath(base={self.base!r}, num_categories={self.num_categories!r})"

    @property
    def energy(self) -> EnergyFn:
        """The annealed energy ``E_β(x)``; its params are :class:`AnnealedParams`."""
        return bind(_geometric_energy, energy_fn=self.energy_fn)

    def sample_base(self, key: jax.Array, params: Any, num: int) -> Any:
        """``num`` exact base samples (positions)."""
        return self.base.sample(key, (num,))

    def log_partition_base(self, params: Any) -> jax.Array:
        """``log Z_0`` of the base."""
        return self.base.log_partition()

    def kernel_params(self, params: Any, beta: jax.Array) -> AnnealedParams:
        """The kernel's params at ``β``."""
        return AnnealedParams(params, self.base, beta)

    def log_weight_increment(
        self, params: Any, beta_prev: jax.Array, beta: jax.Array, x: Any
    ) -> jax.Array:
        """``log f_β(x) - log f_{β'}(x) = -(β - β') (E(x) - E_base(x))``."""
        z = _encode(x, self.num_categories)
        e_target = self.energy_fn(params, z)
        e_base = self.base.energy(z)
        return -(beta - beta_prev) * (e_target - e_base)


def geometric_path(energy_fn: EnergyFn, base: Any, *, num_categories: Any = None) -> GeometricPath:
    r"""The geometric AIS path from a tractable ``base`` to ``exp(-E(params, x))``.

    ``E_β(x) = (1-β) E_base(x) + β E(params, x)``, ``log Z_0 =
    base.log_partition()``. Build the kernel on ``path.energy`` (params:
    :class:`AnnealedParams`), e.g. ``umrf.samplers.mala(path.energy,
    step_size=0.05)``; with a discrete base and a relaxed energy,
    ``umrf.samplers.gwg(path.energy, num_categories=...)``.

    Args:
      energy_fn: the target energy ``energy_fn(params, x)`` (on encoded states
        for discrete targets: see :func:`umrf.models.relaxation`).
      base: a pytree model with ``energy(x)`` (the same encoding),
        ``log_partition()`` and ``sample(key, shape)``: a
        :class:`~umrf.models.Gaussian`,
        :class:`~umrf.models.FactorizedBernoulli` or
        :class:`~umrf.models.FactorizedCategorical`. It must cover the
        target's support, and the closer it is to the target the fewer
        temperatures AIS needs.
      num_categories: keyword-only encoding of discrete positions, as for the
        samplers (``None``: positions are used as they are, ints cast to float).

    Returns:
      A :class:`GeometricPath`.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> base = umrf.models.Gaussian(jnp.zeros(2), jnp.eye(2))
      >>> path = umrf.inference.geometric_path(lambda p, x: p.energy(x), base)
      >>> round(float(path.log_partition_base(None)), 4)
      1.8379
    """
    check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    for name in ("energy", "log_partition", "sample"):
        if not callable(getattr(base, name, None)):
            raise TypeError(
                f"`base` must have energy(x), log_partition() and sample(key, shape) (e.g. "
                f"umrf.models.Gaussian or FactorizedBernoulli); {type(base).__name__} has no "
                f"`{name}`."
            )
    return GeometricPath(energy_fn, base, check_num_categories(num_categories))


# --------------------------------------------------------------------------- RBM path


def _intermediate_rbm(rbm: BernoulliRBM, visible_bias: jax.Array, beta: jax.Array):
    beta = jnp.asarray(beta, rbm.dtype)
    b = (1.0 - beta) * visible_bias + beta * rbm.b_visible
    return BernoulliRBM.tree_unflatten(None, (beta * rbm.W, b, beta * rbm.c_hidden))


@jax.tree_util.register_pytree_node_class
class RBMBaseRatePath:
    """Salakhutdinov & Murray's AIS path for an RBM (see :func:`rbm_base_rate_path`).

    Attributes:
      visible_bias: ``b_A``, the base-rate model's visible biases ``(n_v,)``.
    """

    def __init__(self, visible_bias: Any):
        self.visible_bias = visible_bias

    def tree_flatten(self):  # noqa: D102
        return (self.visible_bias,), None

    @classmethod
    def tree_unflatten(cls, aux, children):  # noqa: D102
        return cls(children[0])

    def __repr__(self) -> str:
        return f"RBMBaseRatePath(num_visible={jnp.shape(self.visible_bias)[0]})"

    def _check(self, rbm: Any) -> None:
        if not isinstance(rbm, BernoulliRBM):
            raise TypeError(f"`params` must be a BernoulliRBM; got {type(rbm).__name__}.")
        if rbm.num_visible != jnp.shape(self.visible_bias)[0]:
            raise ValueError(
                f"the path's base has {jnp.shape(self.visible_bias)[0]} visible units; the RBM "
                f"has {rbm.num_visible}."
            )

    def sample_base(self, key: jax.Array, params: BernoulliRBM, num: int) -> jax.Array:
        """``v ~ Bernoulli(σ(b_A))``, int8 of shape ``(num, n_v)``."""
        self._check(params)
        shape = (num, params.num_visible)
        p = jnp.broadcast_to(jax.nn.sigmoid(self.visible_bias), shape)
        return jax.random.bernoulli(key, p, shape).astype(jnp.int8)

    def log_partition_base(self, params: BernoulliRBM) -> jax.Array:
        """``log Z_A = Σ_i softplus(b_A,i) + n_h log 2`` (the base RBM has no weights)."""
        self._check(params)
        return jnp.sum(jax.nn.softplus(self.visible_bias)) + params.num_hidden * math.log(2.0)

    def kernel_params(self, params: BernoulliRBM, beta: jax.Array) -> BernoulliRBM:
        """The intermediate RBM ``(βW, (1-β) b_A + β b, β c)`` (block-Gibbs it)."""
        self._check(params)
        return _intermediate_rbm(params, self.visible_bias, beta)

    def log_weight_increment(
        self, params: BernoulliRBM, beta_prev: jax.Array, beta: jax.Array, x: Any
    ) -> jax.Array:
        """``F_{β'}(v) - F_β(v)`` with ``F_β`` the free energy of the intermediate RBM."""
        now = _intermediate_rbm(params, self.visible_bias, beta)
        before = _intermediate_rbm(params, self.visible_bias, beta_prev)
        return before.free_energy(x) - now.free_energy(x)


def rbm_base_rate_path(x_data: Any, *, eps: float = 1e-3) -> RBMBaseRatePath:
    r"""The AIS path of Salakhutdinov & Murray (2008) for a Bernoulli RBM.

    The base is the "base-rate" RBM with no weights, hidden biases zero and
    visible biases ``b_A = log(p̄ / (1 - p̄))`` from the training data's
    visible means ``p̄`` (clipped to ``[eps, 1 - eps]``): a factorised model of
    the data, much closer to a trained RBM than the uniform distribution.
    The path is geometric in the joint ``(v, h)`` space, so the
    intermediate model at ``β`` is the RBM ``(βW, (1-β) b_A + β b, β c)``:
    use ``umrf.samplers.gibbs(rbm)`` as the kernel. ``log Z_A = Σ_i
    softplus(b_A,i) + n_h log 2``.

    Args:
      x_data: training data, ``(N, n_v)`` or ``(N, ...)`` binary images
        (flattened), or a ``(n_v,)`` vector of visible means.
      eps: keyword-only clipping of the means.

    Returns:
      An :class:`RBMBaseRatePath`.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> rbm = umrf.models.BernoulliRBM.random(jax.random.key(0), 6, 4)
      >>> data = jnp.array([[1, 0, 0, 1, 1, 0], [1, 1, 0, 0, 1, 0]], jnp.float32)
      >>> path = umrf.inference.rbm_base_rate_path(data)   # means 1, .5, 0, .5, 1, 0
      >>> [round(b, 2) for b in path.visible_bias.tolist()]
      [6.91, 0.0, -6.91, 0.0, 6.91, -6.91]
      >>> float(path.log_partition_base(rbm)) > 4 * 0.69   # n_h log 2 + Σ softplus(b_A)
      True

    References:
      Salakhutdinov & Murray, ICML 2008.
    """
    x = np.asarray(x_data, dtype=np.float64)
    mean = x if x.ndim == 1 else x.reshape(x.shape[0], -1).mean(axis=0)
    if not np.all(np.isfinite(mean)) or np.any(mean < 0) or np.any(mean > 1):
        raise ValueError("`x_data` must be binary data (or visible means) in [0, 1].")
    p = np.clip(mean, eps, 1.0 - eps)
    return RBMBaseRatePath(jnp.asarray(np.log(p) - np.log1p(-p), jnp.result_type(float)))


# --------------------------------------------------------------------------- schedule


def ais_betas(num_temperatures: int, *, schedule: str = "sigmoid", sharpness: float = 4.0):
    r"""An AIS schedule ``0 = β_0 < … < β_K = 1`` (``K = num_temperatures``).

    ``"linear"``: ``β_k = k/K``. ``"sigmoid"`` (default): ``β_k ∝ σ(δ (2k/K - 1))``
    rescaled to ``[0, 1]`` (Grosse et al. 2015), denser at both ends where
    the weights change fastest.

    Args:
      num_temperatures: ``K >= 1``.
      schedule: keyword-only ``"sigmoid"`` or ``"linear"``.
      sharpness: keyword-only ``δ > 0`` of the sigmoid schedule.

    Returns:
      A numpy float64 array of ``K + 1`` values.

    Examples:
      >>> import umrf
      >>> umrf.inference.ais_betas(4, schedule="linear").tolist()
      [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    k = check_positive_int("num_temperatures", num_temperatures)
    t = np.linspace(0.0, 1.0, k + 1)
    if schedule == "linear":
        return t
    if schedule != "sigmoid":
        raise ValueError(f'`schedule` must be "sigmoid" or "linear"; got {schedule!r}.')
    s = 1.0 / (1.0 + np.exp(-sharpness * (2.0 * t - 1.0)))
    betas = (s - s[0]) / (s[-1] - s[0])
    betas[0], betas[-1] = 0.0, 1.0
    return betas


def _check_betas(betas: Any) -> np.ndarray:
    b = np.asarray(betas, dtype=np.float64)
    if b.ndim != 1 or b.size < 2 or b[0] != 0.0 or b[-1] != 1.0 or np.any(np.diff(b) <= 0):
        raise ValueError(
            "`betas` must increase strictly from 0.0 to 1.0 (at least two values); see "
            "umrf.inference.ais_betas."
        )
    return b


# --------------------------------------------------------------------------- AIS


def _summary(log_w: jax.Array, log_z_base: jax.Array) -> tuple[jax.Array, ...]:
    n = log_w.shape[0]
    lse = jax.nn.logsumexp(log_w)
    log_z = log_z_base + lse - jnp.log(jnp.asarray(n, log_w.dtype))
    ess = jnp.exp(2.0 * lse - jax.nn.logsumexp(2.0 * log_w))
    w = jnp.exp(log_w - jnp.max(log_w))
    stderr = jnp.std(w, ddof=1) / (jnp.sqrt(jnp.asarray(n, w.dtype)) * jnp.mean(w))
    return log_z, stderr, ess


def _ais_program(
    alg: SamplingAlgorithm,
    num_chains: int,
    num_steps: int,
    path: Any,
    key: jax.Array,
    params: Any,
    betas: jax.Array,
) -> AISResult:
    k_base, k_run = jax.random.split(key)
    x0 = path.sample_base(k_base, params, num_chains)
    vinit = jax.vmap(alg.init, in_axes=(0, None))
    vstep = jax.vmap(alg.step, in_axes=(0, 0, None))
    vinc = jax.vmap(path.log_weight_increment, in_axes=(None, None, None, 0))
    states = vinit(x0, path.kernel_params(params, betas[0]))
    num_temps = betas.shape[0] - 1

    def transition(keys: jax.Array, carry: Any, t: jax.Array) -> tuple[Any, None]:
        states, log_w, acc, diverged = carry
        k = t // num_steps
        beta_prev, beta = betas[k], betas[k + 1]
        kp = path.kernel_params(params, beta)

        def enter(args: Any) -> Any:
            states, log_w = args
            log_w = log_w + vinc(params, beta_prev, beta, states.position)
            return vinit(states.position, kp), log_w

        if num_steps == 1:
            states, log_w = enter((states, log_w))
        else:
            states, log_w = jax.lax.cond(t % num_steps == 0, enter, lambda a: a, (states, log_w))
        states, info = vstep(keys, states, kp)
        acc = acc + jnp.mean(jnp.asarray(info.acceptance_rate, jnp.float32))
        return (states, log_w, acc, diverged | info.diverged), None

    dtype = jnp.result_type(*jax.tree_util.tree_leaves(params), jnp.float32)
    carry = (
        states,
        jnp.zeros((num_chains,), dtype),
        jnp.zeros((), jnp.float32),
        jnp.zeros((num_chains,), bool),
    )
    (states, log_w, acc, diverged), _ = scan_steps(
        transition,
        carry,
        chain_keys(k_run, num_chains),
        jnp.int32(0),
        num_records=num_temps * num_steps,
    )
    log_z_base = jnp.asarray(path.log_partition_base(params), dtype)
    log_z, stderr, ess = _summary(log_w, log_z_base)
    return AISResult(
        log_z=log_z,
        log_z_stderr=stderr,
        log_weights=log_w,
        ess=ess,
        log_z_base=log_z_base,
        samples=states.position,
        acceptance_rate=acc / (num_temps * num_steps),
        num_diverged=jnp.sum(diverged).astype(jnp.int32),
    )


@functools.lru_cache(maxsize=32)
def _ais_jit(alg: SamplingAlgorithm, num_chains: int, num_steps: int) -> Any:
    return jax.jit(functools.partial(_ais_program, alg, num_chains, num_steps))


def ais(
    alg: SamplingAlgorithm,
    path: Any,
    key: jax.Array,
    params: Any,
    *,
    num_chains: int,
    num_temperatures: int = 1000,
    num_steps: int = 1,
    schedule: str = "sigmoid",
    betas: Any = None,
) -> AISResult:
    r"""Annealed importance sampling estimate of ``log Z`` along ``path``.

    See the module docstring for the estimator, its standard error and ESS,
    and the two paths. The whole run is one compiled ``lax.scan`` over
    temperatures of a ``vmap`` over chains, cached on ``(alg, num_chains,
    num_steps)`` and the shapes: new params, keys and schedules of the same
    length do not recompile.

    Args:
      alg: the transition kernel, any umrf sampler whose params are
        ``path.kernel_params(params, β)``: built on ``path.energy`` for a
        :func:`geometric_path` (``mala``, ``ula``, ``gwg``, ``dmala``, …), or
        ``umrf.samplers.gibbs(rbm)`` for :func:`rbm_base_rate_path`. Its state
        is rebuilt at every temperature, so cached energies are never stale.
      path: a :class:`GeometricPath`, an :class:`RBMBaseRatePath`, or any
        object with the same four methods.
      key: PRNG key.
      params: the target's parameters (for an RBM path, the RBM).
      num_chains: keyword-only number of independent AIS runs ``N >= 2``.
      num_temperatures: keyword-only ``K`` (ignored when ``betas`` is given).
      num_steps: keyword-only kernel steps per temperature.
      schedule: keyword-only ``"sigmoid"`` or ``"linear"`` (see :func:`ais_betas`).
      betas: keyword-only explicit schedule from 0 to 1 (overrides the above).

    Returns:
      :class:`AISResult`.

    Raises:
      TypeError/ValueError: a non-algorithm, a bad key, a path without the
        protocol's methods, bad sizes or schedule.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> target = umrf.models.Gaussian(jnp.ones(2), 4.0 * jnp.eye(2))     # log Z = log(2π/4)
      >>> base = umrf.models.Gaussian(jnp.zeros(2), jnp.eye(2))
      >>> path = umrf.inference.geometric_path(lambda p, x: p.energy(x), base)
      >>> alg = umrf.samplers.mala(path.energy, step_size=0.1)
      >>> res = umrf.inference.ais(alg, path, jax.random.key(0), target,
      ...                          num_chains=256, num_temperatures=100)
      >>> exact = float(target.log_partition())
      >>> bool(abs(float(res.log_z) - exact) < 4 * float(res.log_z_stderr) + 0.02)
      True

    References:
      Neal, Statistics and Computing 11 (2001); Salakhutdinov & Murray,
      ICML 2008.
    """
    if not isinstance(alg, SamplingAlgorithm):
        raise TypeError(
            "`alg` must be a umrf.samplers.SamplingAlgorithm (the AIS transition kernel); got "
            f"{type(alg).__name__}."
        )
    for name in ("sample_base", "log_partition_base", "kernel_params", "log_weight_increment"):
        if not callable(getattr(path, name, None)):
            raise TypeError(
                f"`path` must provide {name}(...) (use umrf.inference.geometric_path or "
                f"rbm_base_rate_path); {type(path).__name__} does not."
            )
    check_key(key)
    num_chains = check_positive_int("num_chains", num_chains)
    if num_chains < 2:
        raise ValueError("`num_chains` must be >= 2 (the standard error needs two weights).")
    num_steps = check_positive_int("num_steps", num_steps)
    if betas is None:
        betas = ais_betas(num_temperatures, schedule=schedule)
    b = jnp.asarray(_check_betas(betas), jnp.result_type(float))
    try:
        program = _ais_jit(alg, num_chains, num_steps)
    except TypeError:  # an algorithm with traced hyperparameters: already inside jit
        program = functools.partial(_ais_program, alg, num_chains, num_steps)
    return program(path, key, params, b)
