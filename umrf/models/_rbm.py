r"""Bernoulli restricted Boltzmann machines: energies, exact ``log Z``, pseudo-likelihood.

A Bernoulli RBM over visible units ``v ∈ {0, 1}^{n_v}`` and hidden units
``h ∈ {0, 1}^{n_h}`` has the joint energy

    E(v, h) = -bᵀv - cᵀh - vᵀW h,         p(v, h) = exp(-E(v, h)) / Z,

with weights ``W`` ``(n_v, n_h)``, visible biases ``b`` and hidden biases
``c``. The graph is bipartite, so each layer is conditionally independent given
the other,

    p(h_j = 1 | v) = σ(c_j + (vᵀW)_j),     p(v_i = 1 | h) = σ(b_i + (W h)_i),

and the hidden layer sums out in closed form, leaving the *free energy* of a
visible configuration

    F(v) = -bᵀv - Σ_j softplus(c_j + (vᵀW)_j),     p(v) = exp(-F(v)) / Z.

``F`` is the RBM's energy on the visible units (``model.energy(v) ==
model.free_energy(v)``), the function contrastive divergence and the
gradient-informed samplers work with. It is smooth in ``v``, so it is also its
own relaxation to ``v ∈ [0, 1]^{n_v}``.

**Exact ``log Z``.** Summing one layer out analytically leaves a sum over the
other layer's ``2^m`` configurations. :meth:`BernoulliRBM.log_partition`
enumerates the *smaller* layer (``m = min(n_v, n_h)``) in chunks of
``chunk_size`` configurations: each chunk is one matrix product and a
``logsumexp``; the chunk results are combined by a final ``logsumexp``. All of
it is in log space and differentiable (``jax.grad`` gives the model
expectations ``-E_p[∂E/∂θ]``); each chunk is rematerialised on the backward
pass (``jax.checkpoint``), so memory stays ``O(chunk_size · max(n_v, n_h))``.
It costs ``2^m · n_v · n_h`` multiply-adds: about ``m ≤ 24`` is practical on a
CPU; beyond that use AIS (:func:`umrf.inference.ais` with
:func:`umrf.inference.rbm_base_rate_path`).

The model is a pytree whose leaves are ``(W, b_visible, c_hidden)``; it is its
own ``params`` (DESIGN.md §6), so new weights never recompile.

References:
  P. Smolensky, "Information processing in dynamical systems: foundations of
  harmony theory", 1986. G. E. Hinton, "Training products of experts by
  minimizing contrastive divergence", Neural Computation 14, 2002.
  G. E. Hinton, "A practical guide to training restricted Boltzmann
  machines", UTML TR 2010-003. J. Besag, "Statistical analysis of non-lattice
  data", The Statistician 24, 1975 (pseudo-likelihood).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from umrf._validation import check_positive_int, is_concrete

__all__ = ["BernoulliRBM"]

#: Default number of configurations enumerated per chunk by the exact ``log Z``.
DEFAULT_CHUNK_SIZE = 2**12
#: Default largest number of configurations ``2^min(n_v, n_h)`` the exact ``log Z`` enumerates.
DEFAULT_MAX_TABLE_SIZE = 2**24


def _as_float_array(name: str, value: Any, ndim: int) -> jax.Array:
    arr = value if isinstance(value, jax.core.Tracer) else jnp.asarray(value)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.float32)
    if arr.ndim != ndim:
        want = "(num_visible, num_hidden)" if ndim == 2 else "a vector"
        raise ValueError(f"`{name}` must have {ndim} axes, {want}; got shape {arr.shape}.")
    if is_concrete(arr) and not bool(jnp.all(jnp.isfinite(arr))):
        raise ValueError(f"`{name}` contains NaN or infinite values; pass finite numbers.")
    return arr


def _check_units(name: str, x: Any, size: int, layer: str) -> jax.Array:
    x = x if isinstance(x, jax.core.Tracer) else jnp.asarray(x)
    if x.shape != (size,):
        raise ValueError(
            f"`{name}` must be one {layer} configuration of shape ({size},); got shape "
            f"{x.shape}. Batch with jax.vmap."
        )
    return x


@jax.tree_util.register_pytree_node_class
class BernoulliRBM:
    r"""A Bernoulli RBM ``E(v, h) = -bᵀv - cᵀh - vᵀWh``; a pytree that is its own params.

    Args:
      W: weights, shape ``(num_visible, num_hidden)``.
      b_visible: visible biases ``b``, shape ``(num_visible,)``.
      c_hidden: hidden biases ``c``, shape ``(num_hidden,)``.

    Raises:
      ValueError: shapes that do not fit together, or non-finite numbers.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> rbm = umrf.models.BernoulliRBM(jnp.zeros((3, 2)), jnp.zeros(3), jnp.zeros(2))
      >>> round(float(rbm.log_partition()), 4), round(5 * float(jnp.log(2.0)), 4)  # 2^5 states
      (3.4657, 3.4657)
      >>> round(float(rbm.free_energy(jnp.ones(3))), 4)           # -2 log 2
      -1.3863

    References:
      Smolensky (1986); Hinton, Neural Computation 14 (2002).
    """

    __slots__ = ("W", "b_visible", "c_hidden")

    def __init__(self, W: Any, b_visible: Any, c_hidden: Any) -> None:
        W = _as_float_array("W", W, 2)
        b = _as_float_array("b_visible", b_visible, 1)
        c = _as_float_array("c_hidden", c_hidden, 1)
        if b.shape[0] != W.shape[0]:
            raise ValueError(
                f"`b_visible` has {b.shape[0]} entries but `W` has {W.shape[0]} rows "
                "(one per visible unit)."
            )
        if c.shape[0] != W.shape[1]:
            raise ValueError(
                f"`c_hidden` has {c.shape[0]} entries but `W` has {W.shape[1]} columns "
                "(one per hidden unit)."
            )
        if W.shape[0] == 0 or W.shape[1] == 0:
            raise ValueError(f"an RBM needs a visible and a hidden unit at least; got {W.shape}.")
        self.W = W
        self.b_visible = b
        self.c_hidden = c

    @classmethod
    def random(
        cls,
        key: jax.Array,
        num_visible: int,
        num_hidden: int,
        *,
        scale: float = 0.01,
        visible_mean: Any = None,
        dtype: Any = jnp.float32,
    ) -> BernoulliRBM:
        """Hinton's (2010) initialisation: ``W ~ N(0, scale²)``, ``c = 0``, ``b = logit(mean)``.

        Args:
          key: PRNG key for the weights.
          num_visible: ``n_v``.
          num_hidden: ``n_h``.
          scale: keyword-only standard deviation of the weights.
          visible_mean: keyword-only optional ``(n_v,)`` data means ``p_i``;
            the visible biases are then ``log(p_i / (1 - p_i))`` (clipped to
            ``p_i ∈ [1e-3, 1 - 1e-3]``), else zero.
          dtype: keyword-only floating dtype of the numbers.

        Returns:
          A :class:`BernoulliRBM`.

        Examples:
          >>> import jax, umrf
          >>> rbm = umrf.models.BernoulliRBM.random(jax.random.key(0), 64, 16)
          >>> rbm.W.shape, rbm.num_visible, rbm.num_hidden
          ((64, 16), 64, 16)
        """
        nv = check_positive_int("num_visible", num_visible)
        nh = check_positive_int("num_hidden", num_hidden)
        W = scale * jax.random.normal(key, (nv, nh), dtype)
        if visible_mean is None:
            b = jnp.zeros((nv,), dtype)
        else:
            p = jnp.clip(jnp.asarray(visible_mean, dtype).reshape(-1), 1e-3, 1.0 - 1e-3)
            if p.shape != (nv,):
                raise ValueError(f"`visible_mean` must have {nv} entries; got shape {p.shape}.")
            b = jnp.log(p) - jnp.log1p(-p)
        return cls(W, b, jnp.zeros((nh,), dtype))

    # --- pytree -----------------------------------------------------------------
    def tree_flatten(self):  # noqa: D102
        return (self.W, self.b_visible, self.c_hidden), None

    @classmethod
    def tree_unflatten(cls, aux, children):  # noqa: D102
        obj = object.__new__(cls)
        obj.W, obj.b_visible, obj.c_hidden = children
        return obj

    def __repr__(self) -> str:
        return f"BernoulliRBM(num_visible={self.num_visible}, num_hidden={self.num_hidden})"

    # --- structure ----------------------------------------------------------------
    @property
    def num_visible(self) -> int:
        """Number of visible units ``n_v``."""
        return int(jnp.shape(self.W)[0])

    @property
    def num_hidden(self) -> int:
        """Number of hidden units ``n_h``."""
        return int(jnp.shape(self.W)[1])

    @property
    def dtype(self) -> Any:
        """Floating dtype of the model's numbers."""
        return jnp.result_type(self.W, self.b_visible, self.c_hidden)

    # --- energies -------------------------------------------------------------------
    def joint_energy(self, v: Any, h: Any) -> jax.Array:
        """``E(v, h) = -bᵀv - cᵀh - vᵀWh`` of one pair (int or float units)."""
        v = _check_units("v", v, self.num_visible, "visible").astype(self.dtype)
        h = _check_units("h", h, self.num_hidden, "hidden").astype(self.dtype)
        return -(v @ self.b_visible) - (h @ self.c_hidden) - v @ (self.W @ h)

    def hidden_field(self, v: jax.Array) -> jax.Array:
        """``c + vᵀW``, the hidden units' logits given ``v``."""
        v = _check_units("v", v, self.num_visible, "visible").astype(self.dtype)
        return self.c_hidden + v @ self.W

    def visible_field(self, h: jax.Array) -> jax.Array:
        """``b + W h``, the visible units' logits given ``h``."""
        h = _check_units("h", h, self.num_hidden, "hidden").astype(self.dtype)
        return self.b_visible + self.W @ h

    def hidden_probabilities(self, v: Any) -> jax.Array:
        """``p(h_j = 1 | v) = σ(c_j + (vᵀW)_j)``."""
        return jax.nn.sigmoid(self.hidden_field(v))

    def visible_probabilities(self, h: Any) -> jax.Array:
        """``p(v_i = 1 | h) = σ(b_i + (W h)_i)``."""
        return jax.nn.sigmoid(self.visible_field(h))

    def free_energy(self, v: Any) -> jax.Array:
        r"""``F(v) = -bᵀv - Σ_j softplus(c_j + (vᵀW)_j)`` (``p(v) ∝ e^{-F(v)}``).

        Defined (and smooth) for real ``v``; at binary ``v`` it is
        ``-log Σ_h e^{-E(v, h)}``.
        """
        v = _check_units("v", v, self.num_visible, "visible").astype(self.dtype)
        return -(v @ self.b_visible) - jnp.sum(jax.nn.softplus(self.c_hidden + v @ self.W))

    def energy(self, v: Any) -> jax.Array:
        """The model's energy on the visible units: the free energy ``F(v)``."""
        return self.free_energy(v)

    # --- normaliser and likelihoods -------------------------------------------------
    def log_partition(
        self, *, chunk_size: int = DEFAULT_CHUNK_SIZE, max_table_size: int = DEFAULT_MAX_TABLE_SIZE
    ) -> jax.Array:
        r"""Exact ``log Z``: sum out the larger layer, enumerate the smaller one in chunks.

        With ``n_h ≤ n_v``:
        ``log Z = logsumexp_h [cᵀh + Σ_i softplus(b_i + (W h)_i)]`` over all
        ``2^{n_h}`` hidden configurations (otherwise the same over visible
        configurations, ``logsumexp_v [-F(v)]``). Differentiable; jit-able.

        Args:
          chunk_size: keyword-only number of configurations per chunk (a power
            of two; smaller chunks use less memory).
          max_table_size: keyword-only largest ``2^min(n_v, n_h)`` allowed
            (default ``2^24``, a few seconds on a CPU for ``n_v = 64``).

        Returns:
          Scalar ``log Z`` in the model's dtype.

        Raises:
          ValueError: the smaller layer has too many units for
            ``max_table_size`` (use AIS), or a bad ``chunk_size``.
        """
        chunk_size = check_positive_int("chunk_size", chunk_size)
        if chunk_size & (chunk_size - 1):
            raise ValueError(f"`chunk_size` must be a power of two; got {chunk_size}.")
        max_table_size = check_positive_int("max_table_size", max_table_size)
        m = min(self.num_visible, self.num_hidden)
        if 2**m > max_table_size:
            raise ValueError(
                f"exact log Z enumerates 2^{m} configurations of the smaller layer, more than "
                f"`max_table_size` = {max_table_size}; raise it or estimate log Z with AIS "
                "(umrf.inference.ais with umrf.inference.rbm_base_rate_path)."
            )
        return _log_partition(self, min(chunk_size, 2**m))

    def log_likelihood(self, v: Any, *, log_z: Any = None) -> jax.Array:
        """``log p(v) = -F(v) - log Z`` (exact ``log Z`` unless ``log_z`` is given).

        Pass ``log_z`` (exact or an AIS estimate) when evaluating many ``v``
        so the normaliser is computed once.
        """
        if log_z is None:
            log_z = self.log_partition()
        return -self.free_energy(v) - log_z

    def pseudo_log_likelihood(self, v: Any) -> jax.Array:
        r"""Exact log pseudo-likelihood ``Σ_i log p(v_i | v_{-i})`` (Besag 1975).

        ``p(v_i | v_{-i}) = σ(F(v^{(i)}) - F(v))`` where ``v^{(i)}`` is ``v``
        with unit ``i`` flipped; all ``n_v`` flips cost one ``(n_v, n_h)``
        product. (scikit-learn's ``score_samples`` returns ``n_v`` times the
        term of ONE random unit, an unbiased but noisy estimate of this sum.)
        """
        v = _check_units("v", v, self.num_visible, "visible").astype(self.dtype)
        a = self.c_hidden + v @ self.W
        delta = 1.0 - 2.0 * v  # +1 where v_i = 0 flips to 1, -1 where 1 flips to 0
        a_flip = a[None, :] + delta[:, None] * self.W
        gap = -self.b_visible * delta - jnp.sum(
            jax.nn.softplus(a_flip) - jax.nn.softplus(a)[None, :], axis=1
        )  # F(v^(i)) - F(v)
        return jnp.sum(jax.nn.log_sigmoid(gap))


def _bits(index: jax.Array, m: int, dtype: Any) -> jax.Array:
    """Row ``r`` holds the ``m`` binary digits of ``index[r]`` (least significant first)."""
    shifts = jnp.arange(m, dtype=jnp.int32)
    return ((index[:, None] >> shifts[None, :]) & 1).astype(dtype)


@functools.partial(jax.jit, static_argnums=(1,))
def _log_partition(rbm: BernoulliRBM, chunk_size: int) -> jax.Array:
    dtype = rbm.dtype
    if rbm.num_hidden <= rbm.num_visible:
        W, enum_bias, other_bias = rbm.W.T, rbm.c_hidden, rbm.b_visible
    else:
        W, enum_bias, other_bias = rbm.W, rbm.b_visible, rbm.c_hidden
    m = W.shape[0]  # W: (enumerated, summed-out)
    num_chunks = 2**m // chunk_size

    @jax.checkpoint
    def chunk_lse(k: jax.Array) -> jax.Array:
        s = _bits(k * chunk_size + jnp.arange(chunk_size, dtype=jnp.int32), m, dtype)
        values = s @ enum_bias + jnp.sum(jax.nn.softplus(other_bias[None, :] + s @ W), axis=1)
        return jax.nn.logsumexp(values)

    per_chunk = jax.lax.map(chunk_lse, jnp.arange(num_chunks, dtype=jnp.int32))
    return jax.nn.logsumexp(per_chunk)
