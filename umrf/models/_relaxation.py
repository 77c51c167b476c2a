r"""Continuous relaxations of discrete energies, the input of gradient-informed samplers.

Gibbs-with-Gradients and the discrete Langevin proposal (``umrf.samplers.gwg``,
``dula``, ``dmala``) estimate the change of the energy under a move from its
*gradient*, so they need the energy as a differentiable function on a
continuous embedding of the states. umrf uses two encodings
(:func:`encode_states`):

* **binary** (``num_categories=None``): a state ``x ∈ {0, 1}^S`` is the float
  array ``x`` itself; the relaxation is a function on ``[0, 1]^S``;
* **categorical** (``num_categories=K``, or one cardinality per variable): a
  state ``x ∈ {0, …, K-1}^S`` is its one-hot encoding ``X ∈ {0, 1}^{S × K}``;
  the relaxation is a function on ``ℝ^{S × K}``.

The natural relaxation of a sum of table lookups is **multilinear**:
``θ(x_C) = Σ_{s_C} Π_{v ∈ C} X[v, s_v] θ(s_C)``, exact at every one-hot point
and linear in each variable's row (Grathwohl et al. 2021). :func:`relaxation`
builds it for umrf's discrete models:

===============  ==============================  ======================================
model            encoding (``num_categories``)   relaxed energy
===============  ==============================  ======================================
DiscreteMRF      one-hot, ``mrf.cardinalities``  multilinear in the factor tables
Ising            binary, ``None``                ``-J Σ s_i s_j - Σ h s``, ``s = 2x - 1``
Potts            one-hot, ``q``                  ``-J Σ_<ij> X_i·X_j - Σ_i h_i·X_i``
BernoulliRBM     binary, ``None`` (visible)      the free energy ``F(v)``
===============  ==============================  ======================================

An Ising lattice's spins ``s = ±1`` map to binary states ``x = (s + 1) / 2``.

Any user energy on one-hot (or binary float) inputs, e.g. a neural network,
is used the same way: pass it with its ``num_categories``.

**Hard zeros.** A ``DiscreteMRF`` may have ``-inf`` log-potentials. Its
relaxed energy has the *exact* value at every one-hot point (``+inf`` in a
zero-probability state, read by a table lookup at ``argmax X``), and the
gradient of the multilinear extension in which each ``-inf`` entry is replaced
by a finite surrogate (the table's smallest finite entry minus 30), so the
proposals steer away from hard zeros without producing NaN; the samplers'
Metropolis–Hastings step rejects any move into one.

References:
  W. Grathwohl, K. Swersky, M. Hashemi, D. Duvenaud, C. Maddison, "Oops I
  took a gradient: scalable sampling for discrete distributions", ICML 2021.
  R. Zhang, X. Liu, Q. Liu, "A Langevin-like sampler for discrete
  distributions", ICML 2022.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from umrf._bind import bind
from umrf.models._discrete_mrf import DiscreteMRF
from umrf.models._lattice import Ising, Potts
from umrf.models._rbm import BernoulliRBM

__all__ = ["Relaxation", "encode_states", "relaxation"]

#: How far (in log-potential units) below a table's smallest finite entry a hard zero sits
#: in the relaxation's gradient.
HARD_ZERO_MARGIN = 30.0

NumCategories = int | tuple[int, ...] | None


class Relaxation(NamedTuple):
    """A discrete model's relaxed energy and the encoding it expects.

    Attributes:
      energy_fn: ``energy_fn(params, x_encoded) -> scalar``, differentiable in
        ``x_encoded``; at encoded states it equals the model's energy.
      num_categories: the encoding: ``None`` (binary), ``K`` or a tuple of
        per-variable cardinalities (one-hot); pass it to the sampler.
    """

    energy_fn: Callable[[Any, Any], jax.Array]
    num_categories: NumCategories


def encode_states(x: Any, num_categories: NumCategories = None, dtype: Any = None) -> jax.Array:
    """The continuous encoding of integer states (see the module docstring).

    Args:
      x: states: ``{0, 1}`` values (binary) or ints ``0..K-1`` (categorical).
      num_categories: ``None`` for binary; ``K`` or a tuple of cardinalities
        (then ``x`` has shape ``(len(cardinalities),)``) for one-hot.
      dtype: floating dtype of the result (default: JAX's default float).

    Returns:
      ``x`` as floats (binary), or its one-hot encoding with a trailing axis of
      ``K`` (``max(cardinalities)``).

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> umrf.models.encode_states(jnp.array([2, 0]), 3).tolist()
      [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    dtype = jnp.zeros((), dtype if dtype is not None else float).dtype
    x = jnp.asarray(x)
    if num_categories is None:
        return x.astype(dtype)
    k = num_categories if isinstance(num_categories, int) else max(num_categories)
    return jax.nn.one_hot(x, k, dtype=dtype)


# --------------------------------------------------------------------------- lattices


def _lattice_bond_sum(x: jax.Array, ndim: int, periodic: bool, fn: Any) -> jax.Array:
    """``Σ_a Σ_i fn(x_i, x_{i+e_a})`` over the lattice axes ``0..ndim-1`` of ``x``."""
    total = jnp.zeros((), x.dtype)
    for a in range(ndim):
        if periodic:
            total = total + jnp.sum(fn(x, jnp.roll(x, -1, axis=a)))
        elif x.shape[a] > 1:
            lo = jax.lax.slice_in_dim(x, 0, x.shape[a] - 1, axis=a)
            hi = jax.lax.slice_in_dim(x, 1, x.shape[a], axis=a)
            total = total + jnp.sum(fn(lo, hi))
    return total


def _ising_relaxed(params: Ising, x: jax.Array, *, shape: tuple[int, ...], periodic: bool):
    _check_type(params, Ising, shape)
    s = 2.0 * x - 1.0
    pair = _lattice_bond_sum(s, len(shape), periodic, jnp.multiply)
    return -params.coupling * pair - jnp.sum(params.field * s)


def _potts_relaxed(params: Potts, x: jax.Array, *, shape: tuple[int, ...], periodic: bool):
    _check_type(params, Potts, shape)
    same = _lattice_bond_sum(x, len(shape), periodic, jnp.multiply)
    h = jnp.broadcast_to(params.field, x.shape)
    return -params.coupling * same - jnp.sum(h * x)


def _check_type(params: Any, cls: type, shape: tuple[int, ...]) -> None:
    if not isinstance(params, cls) or tuple(params.shape) != shape:
        raise TypeError(
            f"`params` must be a {cls.__name__} of shape {shape} like the model the relaxation "
            f"was built from; got {params!r}."
        )


# --------------------------------------------------------------------------- RBM


def _rbm_relaxed(params: BernoulliRBM, v: jax.Array) -> jax.Array:
    if not isinstance(params, BernoulliRBM):
        raise TypeError(f"`params` must be a BernoulliRBM; got {type(params).__name__}.")
    return params.free_energy(v)


# --------------------------------------------------------------------------- DiscreteMRF


def _mrf_relaxed(params: DiscreteMRF, x: jax.Array, *, structure: tuple[Any, ...]) -> jax.Array:
    from umrf._structure import check_same_structure, groups_for

    check_same_structure("params", params, structure)
    fg = groups_for(params)
    tables = fg.tables(params)
    dtype = x.dtype
    smooth = jnp.zeros((), dtype)
    for g, t in zip(fg.groups, tables, strict=True):
        t = t.astype(dtype)
        m = len(g.shape)
        finite = t > -jnp.inf
        axes = tuple(range(1, m + 1))
        lo = jnp.min(jnp.where(finite, t, jnp.inf), axis=axes, keepdims=True)
        lo = jnp.where(jnp.isfinite(lo), lo, 0.0)
        surrogate = jax.lax.stop_gradient(lo - HARD_ZERO_MARGIN)
        t_smooth = jnp.where(finite, t, surrogate)
        letters = string.ascii_letters[1 : m + 1]
        operands = [x[g.scopes[:, j], : g.shape[j]] for j in range(m)]
        spec = ",".join("a" + c for c in letters) + ",a" + letters + "->"
        smooth = smooth + jnp.einsum(spec, *operands, t_smooth)
    constant = fg.constant(params, dtype)
    smooth_energy = -(smooth + constant)
    states = jnp.argmax(x, axis=-1).astype(jnp.int32)
    exact_energy = -(fg.log_score(tables, states).astype(dtype) + constant)
    # value: the exact energy at argmax (±inf at hard zeros); gradient: the smooth surrogate's
    return smooth_energy + jax.lax.stop_gradient(exact_energy - smooth_energy)


# --------------------------------------------------------------------------- public


def relaxation(model: Any) -> Relaxation:
    """The relaxed energy of a umrf discrete model and the encoding it expects.

    See the module docstring for each model's relaxation. The energy is a
    value-equal function (built with :func:`umrf.samplers.bind`): relaxations
    of models of the same structure compare equal, so samplers built on them
    share compiled programs. It takes the model itself as ``params``.

    Args:
      model: a :class:`~umrf.models.DiscreteMRF`, :class:`~umrf.models.Ising`,
        :class:`~umrf.models.Potts` or :class:`~umrf.models.BernoulliRBM`.

    Returns:
      :class:`Relaxation` ``(energy_fn, num_categories)``.

    Raises:
      TypeError: an unsupported model.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> m = umrf.models.ising((2, 2), coupling=0.5)
      >>> r = umrf.models.relaxation(m)
      >>> s = jnp.array([[1, -1], [1, 1]], jnp.int8)
      >>> x = (s + 1) // 2                      # spins -> binary states
      >>> float(r.energy_fn(m, x.astype(float))) == float(m.energy(s)), r.num_categories
      (True, None)
    """
    if isinstance(model, Ising):
        fn = bind(_ising_relaxed, shape=tuple(model.shape), periodic=bool(model.periodic))
        return Relaxation(fn, None)
    if isinstance(model, Potts):
        fn = bind(_potts_relaxed, shape=tuple(model.shape), periodic=bool(model.periodic))
        return Relaxation(fn, int(model.num_states))
    if isinstance(model, BernoulliRBM):
        return Relaxation(bind(_rbm_relaxed), None)
    if isinstance(model, DiscreteMRF):
        structure = (tuple(model.cardinalities), tuple(f.scope for f in model.factors))
        return Relaxation(bind(_mrf_relaxed, structure=structure), tuple(model.cardinalities))
    raise TypeError(
        "`model` must be a umrf.models.DiscreteMRF, Ising, Potts or BernoulliRBM; got "
        f"{type(model).__name__}. For another energy, write it on one-hot (or binary float) "
        "inputs and pass its `num_categories` to the sampler."
    )
