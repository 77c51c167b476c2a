"""The Langevin proposal shared by ULA, MALA and annealed Langevin (one home).

Every umrf Langevin sampler moves a position ``x`` by the Euler–Maruyama step
of the overdamped Langevin diffusion ``dX = -∇E(X)/T dt + sqrt(2) dW``,

    x' = x - τ ∇E(x)/T + sqrt(2τ) ε,      ε ~ N(0, I),

and MALA corrects it with the Gaussian proposal density
``log q(y | x) = -‖y - x + τ∇E(x)/T‖² / (4τ)``. This module holds the pieces:
the noise draws, the move, the proposal log-density ratio, the finiteness
check, and the position checks.

**Clamped (conditional) sampling.** A position may be a :class:`Clamped`
pair ``(value, observed)``: ``observed`` is a boolean pytree shaped like
``value``, True for coordinates that stay fixed. The energy is evaluated on
the whole ``value``, but the gradient and the noise are zeroed on observed
coordinates, so the chain moves only the free coordinates ``x_F`` and targets
the conditional ``p(x_F | x_O) ∝ exp(-E(x_F, x_O)/T)``. For MALA the
proposal is then a Gaussian on the free subspace and both ``log q`` terms
sum over free coordinates only, so the correction stays exact. Observed
coordinates are returned unchanged, bit for bit. The mask is per chain (a
leaf of the position), so every chain may observe a different set, as in
inpainting a batch of images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import check_scalar_energy, check_score_shape

__all__ = ["Clamped", "check_scalar_energy", "check_score_shape"]

EnergyFn = Callable[[Any, Any], jax.Array]


class Clamped(NamedTuple):
    """A position whose ``observed`` coordinates stay fixed (conditional sampling).

    Attributes:
      value: the full configuration ``x`` (a floating array or pytree); the
        energy sees all of it.
      observed: a boolean array (or pytree) shaped like ``value``; True marks
        a clamped coordinate, never changed by the sampler.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> energy = lambda p, x: 0.5 * jnp.sum(x**2)
      >>> alg = umrf.samplers.ula(energy, step_size=0.1)
      >>> x = umrf.samplers.Clamped(jnp.array([3.0, 0.0]), jnp.array([True, False]))
      >>> state, _ = alg.step(jax.random.key(0), alg.init(x, None), None)
      >>> float(state.position.value[0])  # the observed coordinate is unchanged
      3.0
    """

    value: Any
    observed: Any


# --------------------------------------------------------------------------- positions


def split(position: Any) -> tuple[Any, Any]:
    """``(value, free)``: the configuration and the free-coordinate mask (None when unclamped)."""
    if isinstance(position, Clamped):
        free = jax.tree_util.tree_map(jnp.logical_not, position.observed)
        return position.value, free
    return position, None


def rejoin(position: Any, value: Any) -> Any:
    """``position`` with its configuration replaced by ``value`` (the mask is kept)."""
    if isinstance(position, Clamped):
        return Clamped(value, position.observed)
    return value


def mask_free(tree: Any, free: Any) -> Any:
    """Zero ``tree`` on observed coordinates (identity when ``free`` is None)."""
    if free is None:
        return tree
    return jax.tree_util.tree_map(lambda a, f: jnp.where(f, a, jnp.zeros_like(a)), tree, free)


def check_float_position(position: Any) -> None:
    """Raise ``TypeError``/``ValueError`` for a non-float or mis-masked position."""
    value = position.value if isinstance(position, Clamped) else position
    for leaf in jax.tree_util.tree_leaves(value):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(
                "Langevin samplers need a floating-point position; got dtype "
                f"{jnp.result_type(leaf)}. Cast the initial position with .astype(float)."
            )
    if isinstance(position, Clamped):
        v_struct = jax.tree_util.tree_structure(position.value)
        o_struct = jax.tree_util.tree_structure(position.observed)
        if v_struct != o_struct:
            raise ValueError(
                "`Clamped.observed` must have the structure of `Clamped.value`; got "
                f"{o_struct} and {v_struct}."
            )
        for v, o in zip(
            jax.tree_util.tree_leaves(position.value),
            jax.tree_util.tree_leaves(position.observed),
            strict=True,
        ):
            if jnp.shape(v) != jnp.shape(o) or jnp.result_type(o) != jnp.bool_:
                raise ValueError(
                    "`Clamped.observed` must be a boolean array shaped like `Clamped.value` "
                    f"(True = clamped); got {jnp.result_type(o)} {jnp.shape(o)} for a value of "
                    f"shape {jnp.shape(v)}."
                )


# --------------------------------------------------------------------------- noise


def normal_like(key: jax.Array, tree: Any) -> Any:
    """Standard normal noise with the structure, shapes and dtypes of ``tree``.

    A single array uses one ``jax.random.normal`` draw from ``key`` directly.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = [key] if len(leaves) == 1 else list(jax.random.split(key, len(leaves)))
    noise = [
        jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
        for k, x in zip(keys, leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, noise)


def normal_like_and_uniform(key: jax.Array, tree: Any) -> tuple[Any, jax.Array]:
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
        return normal_like(key_noise, tree), u
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


# --------------------------------------------------------------------------- the move


def energy_and_grad(energy_fn: EnergyFn, params: Any, value: Any, free: Any) -> tuple[Any, Any]:
    """``(E(params, value), ∇ₓE)`` with the gradient zeroed on observed coordinates."""
    energy, grad = jax.value_and_grad(energy_fn, argnums=1)(params, value)
    return energy, mask_free(grad, free)


def move(value: Any, drift_dir: Any, noise: Any, drift: Any, scale: Any, free: Any) -> Any:
    """``value + drift · drift_dir + scale · noise`` on free coordinates.

    ULA and MALA pass ``drift_dir = ∇E`` with ``drift = -τ/T``; annealed
    Langevin passes the score with ``drift = α/2``. Observed coordinates are
    selected from ``value`` unchanged (not recomputed), so they stay bitwise
    equal.
    """
    moved = jax.tree_util.tree_map(
        lambda x, g, z: x + drift * g + scale * z, value, drift_dir, noise
    )
    if free is None:
        return moved
    return jax.tree_util.tree_map(jnp.where, free, moved, value)


def sum_sq(tree: Any) -> jax.Array:
    """``Σ`` of the squared entries of every leaf."""
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(tree))


def mala_log_proposals(
    grad_x: Any, grad_y: Any, noise: Any, step_size: Any, drift: Any, scale: Any
) -> tuple[jax.Array, jax.Array]:
    """``(log q(x | y), log q(y | x))`` of the proposal ``y = x - drift·∇E(x) + scale·ε``.

    ``log q(y|x) = -‖ε‖²/2`` and ``log q(x|y) = -‖x - y + drift·∇E(y)‖²/(4τ)``
    with ``x - y + drift·∇E(y) = drift·(∇E(x) + ∇E(y)) - scale·ε`` (constants
    dropped; they cancel in the ratio). With clamping, gradients and noise are
    zero on observed coordinates, so both sums run over free coordinates only.
    """
    backward = jax.tree_util.tree_map(
        lambda g0, g1, z: drift * (g0 + g1) - scale * z, grad_x, grad_y, noise
    )
    return -sum_sq(backward) / (4.0 * step_size), -0.5 * sum_sq(noise)


def all_finite(tree: Any) -> jax.Array:
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
