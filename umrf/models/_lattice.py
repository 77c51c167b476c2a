"""Ising and Potts models on hyper-cubic lattices (nearest-neighbour bonds).

Ising (spins ``s_i ∈ {-1, +1}``)::

    E(s) = -J Σ_{<ij>} s_i s_j - Σ_i h_i s_i

Potts (states ``x_i ∈ {0, …, q-1}``)::

    E(x) = -J Σ_{<ij>} [x_i = x_j] - Σ_i h_i(x_i)

``<ij>`` runs over the bonds ``(i, i + e_a)`` of every axis ``a``; with
``periodic=True`` the lattice wraps around (a torus), otherwise the boundary
bonds are absent. Inverse temperature is folded into the numbers (``J = β``
for the classic ferromagnet at ``β``). The models are pytrees whose leaves
are the coupling ``J`` (a scalar) and the field (``h`` a scalar or one value
per site; for Potts a ``(q,)`` vector or one per site), so gradients flow to
them and new values do not recompile (DESIGN.md §6). ``model.energy(x)``
takes one lattice configuration; batch with ``jax.vmap``.

Map to the exact engine: :meth:`Ising.to_discrete_mrf` numbers sites in
row-major (C) order and uses state ``0 ↔ s = -1`` and ``1 ↔ s = +1``
(``state = (s + 1) // 2``), with pairwise tables ``J·[[1, -1], [-1, 1]]`` and
unary tables ``[-h_i, h_i]``, so ``mrf.energy(state) == ising.energy(s)`` and
``umrf.inference.log_partition(model.to_discrete_mrf())`` is the exact
``log Z`` of a small lattice.

References:
  E. Ising, Z. Physik 31, 1925; R. B. Potts, Proc. Camb. Phil. Soc. 48, 1952;
  L. Onsager, Phys. Rev. 65, 1944 (critical point ``β_c = ln(1 + √2)/2``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import check_positive_int, is_concrete
from umrf.models._discrete_mrf import DiscreteMRF, Factor

#: Critical inverse temperature of the 2-D square-lattice Ising model (Onsager).
ISING_CRITICAL_BETA = 0.5 * math.log(1.0 + math.sqrt(2.0))


def _check_shape(shape: Any, periodic: Any) -> tuple[tuple[int, ...], bool]:
    if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
        shape = (int(shape),)
    if not isinstance(shape, Sequence) or len(shape) == 0:
        raise TypeError(f"`shape` must be a non-empty tuple of ints, e.g. (32, 32); got {shape!r}.")
    shape = tuple(check_positive_int(f"shape[{a}]", s) for a, s in enumerate(shape))
    if not isinstance(periodic, bool):
        raise TypeError(f"`periodic` must be a bool; got {type(periodic).__name__}.")
    if periodic and any(s % 2 or s < 2 for s in shape):
        raise ValueError(
            f"A periodic lattice needs even side lengths >= 2 (so the checkerboard is a proper "
            f"2-colouring); got shape {shape}. Use even sizes or periodic=False."
        )
    return shape, periodic


def _check_array(name: str, value: Any, shapes: Sequence[tuple[int, ...]], hint: str) -> jax.Array:
    arr = value if isinstance(value, jax.core.Tracer) else jnp.asarray(value)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.float32)
    if tuple(arr.shape) not in [tuple(s) for s in shapes]:
        raise ValueError(f"`{name}` has shape {tuple(arr.shape)}; {hint}.")
    if is_concrete(arr) and not bool(jnp.all(jnp.isfinite(arr))):
        raise ValueError(f"`{name}` contains NaN or infinite values; pass finite numbers.")
    return arr


def lattice_bonds(shape: tuple[int, ...], periodic: bool) -> np.ndarray:
    """Bonds ``(i, i + e_a)`` of the lattice as an ``(num_bonds, 2)`` array of flat indices.

    Row-major site numbering; for each axis in order, every site bonds to its
    ``+1`` neighbour (wrapping when ``periodic``). On a periodic side of length
    2 a pair is bonded twice, as in the energy's sum over ``(i, i + e_a)``.
    """
    n = math.prod(shape)
    idx = np.arange(n).reshape(shape)
    out = []
    for a, L in enumerate(shape):
        nxt = np.roll(idx, -1, axis=a)
        src, dst = idx, nxt
        if not periodic:
            keep = [slice(None)] * len(shape)
            keep[a] = slice(0, L - 1)
            src, dst = idx[tuple(keep)], nxt[tuple(keep)]
        out.append(np.stack([src.ravel(), dst.ravel()], axis=1))
    return np.concatenate(out, axis=0).astype(np.int32)


def _neighbour_pairs_sum(x: jax.Array, periodic: bool, fn: Any) -> jax.Array:
    """``Σ_a Σ_i fn(x_i, x_{i+e_a})`` over the lattice's bonds."""
    total = jnp.zeros((), jnp.float32)
    for a in range(x.ndim):
        if periodic:
            total = total + jnp.sum(fn(x, jnp.roll(x, -1, axis=a)))
        elif x.shape[a] > 1:
            lo = jax.lax.slice_in_dim(x, 0, x.shape[a] - 1, axis=a)
            hi = jax.lax.slice_in_dim(x, 1, x.shape[a], axis=a)
            total = total + jnp.sum(fn(lo, hi))
    return total


def _check_config(
    name: str, x: Any, shape: tuple[int, ...], valid: Any, what: str
) -> tuple[jax.Array, jax.Array | None]:
    """Validate a lattice configuration; return it and, when traced, its validity flag.

    Concrete configurations with invalid values raise; a traced one cannot be
    checked before the run, so the caller turns its energy into ``NaN``.
    """
    x = x if isinstance(x, jax.core.Tracer) else jnp.asarray(x)
    if tuple(x.shape) != shape:
        raise ValueError(f"`{name}` must have the lattice shape {shape}; got {tuple(x.shape)}.")
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"`{name}` must be an int array; got dtype {x.dtype}.")
    if isinstance(x, jax.core.Tracer):
        return x, jnp.all(valid(x))
    if not bool(np.all(valid(np.asarray(x)))):
        raise ValueError(f"`{name}` holds values that are not {what}.")
    return x, None


def _nan_unless(ok: jax.Array | None, value: jax.Array) -> jax.Array:
    return value if ok is None else jnp.where(ok, value, jnp.nan)


@jax.tree_util.register_pytree_node_class
class Ising:
    """Ising lattice ``E(s) = -J Σ_<ij> s_i s_j - Σ_i h_i s_i`` with spins ``s_i = ±1``.

    Build with :func:`ising`. Attributes: ``shape`` and ``periodic`` (static),
    ``coupling`` (scalar ``J``) and ``field`` (``h``: scalar or ``shape``).
    """

    __slots__ = ("shape", "periodic", "coupling", "field")

    def __init__(self, shape: tuple[int, ...], periodic: bool, coupling: Any, field: Any):
        self.shape = shape
        self.periodic = periodic
        self.coupling = coupling
        self.field = field

    def tree_flatten(self):  # noqa: D102
        return (self.coupling, self.field), (self.shape, self.periodic)

    @classmethod
    def tree_unflatten(cls, aux, children):  # noqa: D102
        return cls(aux[0], aux[1], *children)

    @property
    def num_sites(self) -> int:
        """Number of sites ``n = Π shape``."""
        return math.prod(self.shape)

    def energy(self, x: jax.Array) -> jax.Array:
        """``E(s) = -J Σ_<ij> s_i s_j - Σ_i h_i s_i`` of one spin lattice ``x`` (values ±1).

        A concrete lattice with a value other than ±1 raises; a traced one gives ``NaN``.
        """
        x, ok = _check_config("x", x, self.shape, lambda v: (v == 1) | (v == -1), "spins ±1")
        s = x.astype(jnp.float32)
        pair = _neighbour_pairs_sum(s, self.periodic, jnp.multiply)
        return _nan_unless(ok, -self.coupling * pair - jnp.sum(self.field * s))

    def to_discrete_mrf(self) -> DiscreteMRF:
        """The same model as a :class:`DiscreteMRF` on states ``(s + 1) // 2`` (row-major sites).

        Pairwise factors ``J·[[1, -1], [-1, 1]]`` per bond and unary factors
        ``[-h_i, h_i]`` per site, so ``mrf.energy((s + 1) // 2) == energy(s)``.
        Works with traced couplings/fields (inside ``jit``/``grad``).
        """
        sign = jnp.asarray([[1.0, -1.0], [-1.0, 1.0]], jnp.float32)
        pair = self.coupling * sign
        h = jnp.broadcast_to(self.field, self.shape).reshape(-1)
        unary = jnp.stack([-h, h], axis=1)
        factors = [
            Factor((int(i), int(j)), pair) for i, j in lattice_bonds(self.shape, self.periodic)
        ]
        factors += [Factor((i,), unary[i]) for i in range(self.num_sites)]
        return DiscreteMRF([2] * self.num_sites, factors)

    @staticmethod
    def spins_to_states(s: jax.Array) -> jax.Array:
        """Map spins ``±1`` to states ``0/1`` (``(s + 1) // 2``), flattened row-major."""
        return ((jnp.asarray(s).astype(jnp.int32) + 1) // 2).reshape(-1)

    def states_to_spins(self, x: jax.Array) -> jax.Array:
        """Map flat states ``0/1`` of :meth:`to_discrete_mrf` back to an int8 spin lattice."""
        return (2 * jnp.asarray(x).astype(jnp.int8) - 1).reshape(self.shape)

    def __repr__(self) -> str:
        return f"Ising(shape={self.shape}, periodic={self.periodic})"


@jax.tree_util.register_pytree_node_class
class Potts:
    """q-state Potts lattice ``E(x) = -J Σ_<ij> [x_i = x_j] - Σ_i h_i(x_i)``.

    Build with :func:`potts`. Attributes: ``shape``, ``num_states``,
    ``periodic`` (static), ``coupling`` (scalar ``J``) and ``field``
    (``(q,)`` or ``shape + (q,)``).
    """

    __slots__ = ("shape", "num_states", "periodic", "coupling", "field")

    def __init__(
        self, shape: tuple[int, ...], num_states: int, periodic: bool, coupling: Any, field: Any
    ):
        self.shape = shape
        self.num_states = num_states
        self.periodic = periodic
        self.coupling = coupling
        self.field = field

    def tree_flatten(self):  # noqa: D102
        return (self.coupling, self.field), (self.shape, self.num_states, self.periodic)

    @classmethod
    def tree_unflatten(cls, aux, children):  # noqa: D102
        return cls(aux[0], aux[1], aux[2], *children)

    @property
    def num_sites(self) -> int:
        """Number of sites ``n = Π shape``."""
        return math.prod(self.shape)

    def energy(self, x: jax.Array) -> jax.Array:
        """``E(x) = -J Σ_<ij> [x_i = x_j] - Σ_i h_i(x_i)`` of one state lattice ``x``.

        A concrete lattice with a state outside ``0..q-1`` raises; a traced one gives ``NaN``.
        """
        q = self.num_states
        x, ok = _check_config(
            "x", x, self.shape, lambda v: (v >= 0) & (v < q), f"Potts states 0..{q - 1}"
        )
        x = x.astype(jnp.int32)
        same = _neighbour_pairs_sum(x, self.periodic, lambda a, b: (a == b).astype(jnp.float32))
        h = jnp.broadcast_to(self.field, self.shape + (self.num_states,))
        hx = jnp.take_along_axis(h, x[..., None], axis=-1)
        return _nan_unless(ok, -self.coupling * same - jnp.sum(hx))

    def to_discrete_mrf(self) -> DiscreteMRF:
        """The same model as a :class:`DiscreteMRF` (row-major sites, states unchanged)."""
        q = self.num_states
        pair = self.coupling * jnp.eye(q, dtype=jnp.float32)
        h = jnp.broadcast_to(self.field, self.shape + (q,)).reshape(-1, q)
        factors = [
            Factor((int(i), int(j)), pair) for i, j in lattice_bonds(self.shape, self.periodic)
        ]
        factors += [Factor((i,), h[i]) for i in range(self.num_sites)]
        return DiscreteMRF([q] * self.num_sites, factors)

    def __repr__(self) -> str:
        return f"Potts(shape={self.shape}, num_states={self.num_states}, periodic={self.periodic})"


def ising(
    shape: int | Sequence[int], coupling: Any = 1.0, field: Any = 0.0, *, periodic: bool = True
) -> Ising:
    """Ising lattice model ``p(s) ∝ exp(J Σ_<ij> s_i s_j + Σ_i h_i s_i)``, ``s_i ∈ {-1, +1}``.

    Args:
      shape: lattice side lengths, e.g. ``(64, 64)`` (any number of axes).
        With ``periodic=True`` every side must be even (checkerboard colouring).
      coupling: scalar ``J`` (``J > 0`` ferromagnetic; ``J = β`` for the
        standard model at inverse temperature ``β``).
      field: external field ``h``: a scalar or an array of the lattice shape
        (per-site fields, e.g. ``h_i = η·y_i`` for denoising an observed image).
      periodic: wrap the lattice into a torus.

    Returns:
      An :class:`Ising` pytree (leaves ``coupling``, ``field``).

    Raises:
      TypeError/ValueError: a bad shape, odd periodic sides, a non-scalar
        coupling, a field of the wrong shape, non-finite numbers.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> m = umrf.models.ising((2, 2), coupling=0.5)
      >>> float(m.energy(jnp.ones((2, 2), jnp.int8)))   # 8 bonds, all aligned
      -4.0
    """
    shape, periodic = _check_shape(shape, periodic)
    coupling = _check_array("coupling", coupling, [()], "the coupling J must be a scalar")
    field = _check_array(
        "field", field, [(), shape], f"pass a scalar or one value per site, shape {shape}"
    )
    return Ising(shape, periodic, coupling, field)


def potts(
    shape: int | Sequence[int],
    num_states: int,
    coupling: Any = 1.0,
    field: Any = None,
    *,
    periodic: bool = True,
) -> Potts:
    """q-state Potts lattice ``p(x) ∝ exp(J Σ_<ij> [x_i = x_j] + Σ_i h_i(x_i))``.

    Args:
      shape: lattice side lengths (even sides when ``periodic``).
      num_states: ``q`` (2 ≤ q ≤ 127; states are stored as int8).
      coupling: scalar ``J``.
      field: ``None`` (zero), a ``(q,)`` vector, or per-site ``shape + (q,)``.
      periodic: wrap the lattice into a torus.

    Returns:
      A :class:`Potts` pytree (leaves ``coupling``, ``field``).

    Raises:
      TypeError/ValueError: as for :func:`ising`, or a bad ``num_states``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> m = umrf.models.potts((2, 2), num_states=3, coupling=1.0)
      >>> float(m.energy(jnp.zeros((2, 2), jnp.int8)))
      -8.0
    """
    shape, periodic = _check_shape(shape, periodic)
    q = check_positive_int("num_states", num_states)
    if not 2 <= q <= 127:
        raise ValueError(f"`num_states` must lie in 2..127; got {q}.")
    coupling = _check_array("coupling", coupling, [()], "the coupling J must be a scalar")
    if field is None:
        field = jnp.zeros((q,), jnp.float32)
    field = _check_array(
        "field", field, [(q,), shape + (q,)], f"pass shape ({q},) or {shape + (q,)}"
    )
    return Potts(shape, q, periodic, coupling, field)
