"""Unadjusted Langevin algorithm (ULA).

One step of ULA is the Euler–Maruyama discretisation of the overdamped
Langevin diffusion ``dX = -∇E(X)/T dt + sqrt(2) dW`` whose stationary law is
``p(x) ∝ exp(-E(x)/T)``:

    x' = x - τ ∇E(x) / T + sqrt(2τ) ε,      ε ~ N(0, I).

Without a Metropolis–Hastings correction the chain is biased: on
``N(0, s²)`` (``E = x²/(2s²)``, ``T = 1``) its stationary variance is
``s² / (1 - τ / (2 s²))`` instead of ``s²``. Use :func:`umrf.samplers.mala`
for an exact sampler.

The state caches the energy and its gradient at the current position, so a
step costs one ``jax.value_and_grad`` of the energy.

References:
  Roberts & Tweedie (1996), "Exponential convergence of Langevin
  distributions and their discrete approximations", Bernoulli 2(4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import check_positive
from umrf.samplers._base import SamplingAlgorithm

__all__ = ["ULAInfo", "ULAState", "build_kernel", "init", "ula"]

EnergyFn = Callable[[Any, Any], jax.Array]


class ULAState(NamedTuple):
    """State of one ULA chain.

    Attributes:
      position: current configuration ``x`` (array or pytree of arrays).
      energy: ``E(params, x)`` at ``position`` (scalar).
      energy_grad: ``∇ₓ E(params, x)``, same structure as ``position``.
    """

    position: Any
    energy: jax.Array
    energy_grad: Any


class ULAInfo(NamedTuple):
    """Diagnostics of one ULA transition.

    Attributes:
      acceptance_rate: always 1 (ULA has no accept/reject step); present so
        that every umrf sampler's Info has the same fields.
      diverged: True when the new energy or any entry of the new position is
        NaN or infinite. The non-finite state is kept as is (never replaced).
    """

    acceptance_rate: jax.Array
    diverged: jax.Array


# --------------------------------------------------------------------------- helpers
# (shared with MALA)


class _Bound:
    """``fn`` with bound keyword arguments, compared and hashed by value.

    Two algorithms built from the same energy function and the same
    hyperparameters compare equal, so :func:`umrf.sample_chains` reuses one
    compiled program for both (a training loop may rebuild its sampler every
    iteration without recompiling).
    """

    __slots__ = ("fn", "kwargs", "_key", "__weakref__")

    def __init__(self, fn: Callable[..., Any], **kwargs: Any) -> None:
        self.fn = fn
        self.kwargs = kwargs
        self._key = (fn, tuple(sorted(kwargs.items())))

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args, **self.kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Bound) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{getattr(self.fn, '__name__', self.fn)}({kw})"


def _static_scalar(name: str, value: Any) -> Any:
    """Validate ``value > 0`` and return a Python float when it is concrete.

    A traced value (an algorithm built inside ``jit``) is returned unchanged.
    """
    if isinstance(value, jax.core.Tracer):
        return value
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar; got an array of shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"`{name}` must be a real number; got {value!r}.")
    check_positive(name, value)
    return float(arr)


def _check_energy_fn(energy_fn: Any, name: str = "energy_fn") -> None:
    if not callable(energy_fn):
        raise TypeError(
            f"`{name}` must be a callable `{name}(params, x) -> scalar`; "
            f"got {type(energy_fn).__name__}."
        )


def _normal_like(key: jax.Array, tree: Any) -> Any:
    """Standard normal noise with the structure, shapes and dtypes of ``tree``.

    A single array uses one ``jax.random.normal`` draw from ``key`` directly.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    if len(leaves) == 1:
        keys = [key]
    else:
        keys = list(jax.random.split(key, len(leaves)))
    noise = [
        jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
        for k, x in zip(keys, leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, noise)


def _normal_like_and_uniform(key: jax.Array, tree: Any) -> tuple[Any, jax.Array]:
    """Standard normal noise shaped like ``tree`` and one ``U(0, 1)`` scalar, from one draw.

    A Metropolis–Hastings step needs both. Drawing them as ONE vector of
    ``n + 1`` uniforms on ``(-1, 1)`` (``n`` the number of entries of
    ``tree``) costs one counter-based random-bits call instead of a key split
    plus two calls; the first ``n`` become normals by the inverse-CDF map
    ``sqrt(2) · erfinv(u)`` that ``jax.random.normal`` itself uses, and the
    last becomes ``(u + 1) / 2``, uniform on ``(0, 1)``. Leaves of different
    dtypes fall back to separate draws from split keys.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    dtypes = {jnp.result_type(x) for x in leaves}
    if len(dtypes) != 1:
        key_noise, key_u = jax.random.split(key)
        u = jax.random.uniform(key_u, (), jnp.result_type(*dtypes))
        return _normal_like(key_noise, tree), u
    (dtype,) = dtypes
    sizes = [int(np.prod(jnp.shape(x), dtype=np.int64)) for x in leaves]
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = jax.random.uniform(key, (sum(sizes) + 1,), dtype, minval=lo, maxval=1.0)
    normal = np.sqrt(2.0).astype(dtype) * jax.lax.erf_inv(u[:-1])
    noise, offset = [], 0
    for x, size in zip(leaves, sizes, strict=True):
        noise.append(normal[offset : offset + size].reshape(jnp.shape(x)))
        offset += size
    return jax.tree_util.tree_unflatten(treedef, noise), 0.5 * (u[-1] + 1.0)


def _all_finite(tree: Any) -> jax.Array:
    """True when every entry of every leaf of ``tree`` is finite.

    Computed as ``isfinite(Σ entries)``: one plain reduction per leaf on the hot
    path. A NaN or ±inf entry always makes the sum non-finite; the only false
    alarm is a sum of finite entries overflowing (|Σ| > 3.4e38 in float32),
    which is itself a divergence.
    """
    out = jnp.array(True)
    for leaf in jax.tree_util.tree_leaves(tree):
        out = out & jnp.isfinite(jnp.sum(leaf))
    return out


def _check_position(x: Any) -> None:
    for leaf in jax.tree_util.tree_leaves(x):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(
                "Langevin samplers need a floating-point position; got dtype "
                f"{jnp.result_type(leaf)}. Cast the initial position with .astype(float)."
            )


def _check_scalar_energy(energy_fn: EnergyFn, params: Any, position: Any) -> None:
    """Raise ``ValueError`` unless ``energy_fn(params, position)`` is a scalar (shape-only)."""
    shape = jax.eval_shape(energy_fn, params, position).shape
    if shape != ():
        raise ValueError(
            "`energy_fn(params, x)` must return a scalar for ONE configuration x; got shape "
            f"{shape}. Batch with jax.vmap (or umrf.sample_chains), never inside "
            "the energy."
        )


# --------------------------------------------------------------------------- ULA


def init(position: Any, params: Any, energy_fn: EnergyFn) -> ULAState:
    """Create the state of one chain at ``position``.

    Args:
      position: one configuration ``x`` (floating array or pytree).
      params: parameters passed to ``energy_fn``.
      energy_fn: ``energy_fn(params, x) -> scalar``.

    Returns:
      A :class:`ULAState` with the energy and its gradient cached.
    """
    _check_position(position)
    _check_scalar_energy(energy_fn, params, position)
    energy, grad = jax.value_and_grad(energy_fn, argnums=1)(params, position)
    return ULAState(position, energy, grad)


def _ula_step(
    key: jax.Array,
    state: ULAState,
    params: Any,
    *,
    energy_fn: EnergyFn,
    step_size: Any,
    temperature: float,
) -> tuple[ULAState, ULAInfo]:
    drift = step_size / temperature
    scale = jnp.sqrt(2.0 * step_size)
    noise = _normal_like(key, state.position)
    position = jax.tree_util.tree_map(
        lambda x, g, z: x - drift * g + scale * z, state.position, state.energy_grad, noise
    )
    energy, grad = jax.value_and_grad(energy_fn, argnums=1)(params, position)
    diverged = ~(jnp.isfinite(energy) & _all_finite(position))
    info = ULAInfo(acceptance_rate=jnp.ones((), energy.dtype), diverged=diverged)
    return ULAState(position, energy, grad), info


def build_kernel(
    energy_fn: EnergyFn, temperature: float = 1.0
) -> Callable[[jax.Array, ULAState, Any, Any], tuple[ULAState, ULAInfo]]:
    """Return the ULA transition ``kernel(key, state, params, step_size)``.

    The step size is an argument of the kernel (it may be traced), which is
    what step-size adaptation needs; :func:`ula` binds it.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar``.
      temperature: ``T > 0``.

    Returns:
      ``kernel(key, state, params, step_size) -> (ULAState, ULAInfo)``.
    """
    _check_energy_fn(energy_fn)
    temperature = _static_scalar("temperature", temperature)

    def kernel(
        key: jax.Array, state: ULAState, params: Any, step_size: Any
    ) -> tuple[ULAState, ULAInfo]:
        return _ula_step(
            key, state, params, energy_fn=energy_fn, step_size=step_size, temperature=temperature
        )

    return kernel


def ula(energy_fn: EnergyFn, step_size: float, temperature: float = 1.0) -> SamplingAlgorithm:
    """Unadjusted Langevin algorithm: ``x' = x - τ∇E(x)/T + sqrt(2τ) ε``.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar`` on one configuration.
      step_size: ``τ > 0``.
      temperature: ``T > 0``; the chain targets ``exp(-E/T)`` (up to the
        O(τ) discretisation bias).

    Returns:
      ``SamplingAlgorithm(init, step)`` with ``init(x, params) -> ULAState``
      and ``step(key, state, params) -> (ULAState, ULAInfo)``. Algorithms
      built with the same ``energy_fn`` object and hyperparameters compare
      equal, so :func:`umrf.sample_chains` reuses their compiled program.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> alg = umrf.samplers.ula(lambda p, x: 0.5 * jnp.sum(x**2), step_size=0.1)
      >>> state = alg.init(jnp.zeros(3), None)
      >>> state, info = alg.step(jax.random.key(0), state, None)
      >>> state.position.shape, bool(info.diverged)
      ((3,), False)

    References:
      Roberts & Tweedie (1996), Bernoulli 2(4):341–363.
    """
    _check_energy_fn(energy_fn)
    step_size = _static_scalar("step_size", step_size)
    temperature = _static_scalar("temperature", temperature)
    return SamplingAlgorithm(
        init=_Bound(init, energy_fn=energy_fn),
        step=_Bound(_ula_step, energy_fn=energy_fn, step_size=step_size, temperature=temperature),
    )
