r"""Fully factorised discrete distributions: tractable bases for annealed importance sampling.

``FactorizedBernoulli(logits)``: independent bits ``p(x) = Π_i σ(ℓ_i)^{x_i}
σ(-ℓ_i)^{1-x_i}``, energy ``E(x) = -ℓᵀx``, ``log Z = Σ_i softplus(ℓ_i)``.

``FactorizedCategorical(logits)``: independent categorical variables
``p(x_i = k) ∝ exp(ℓ_{ik})``; the energy takes the one-hot encoding ``X``
(``E(X) = -Σ_{ik} X_{ik} ℓ_{ik}``) like every relaxed energy
(``umrf.models.relaxation``), and ``log Z = Σ_i logsumexp_k ℓ_{ik}``. A
``-inf`` logit marks a category a variable does not have (mixed cardinalities).

Both are pytrees (their logits are the leaves) with ``energy``,
``log_partition``, ``log_prob`` and exact ``sample``, the protocol a base of
:func:`umrf.inference.geometric_path` needs. Both energies are linear in the
encoded state, so they are exact multilinear relaxations.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from umrf._validation import is_concrete

__all__ = ["FactorizedBernoulli", "FactorizedCategorical"]


def _logits(name: str, value: Any, *, allow_neg_inf: bool) -> jax.Array:
    arr = value if isinstance(value, jax.core.Tracer) else jnp.asarray(value)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.float32)
    if is_concrete(arr):
        bad = jnp.isnan(arr) | (arr == jnp.inf)
        if not allow_neg_inf:
            bad = bad | (arr == -jnp.inf)
        if bool(jnp.any(bad)):
            what = "finite or -inf (an absent category)" if allow_neg_inf else "finite"
            raise ValueError(f"`{name}` must be {what}; got NaN or infinite entries.")
    return arr


@jax.tree_util.register_pytree_node_class
class FactorizedBernoulli:
    """Independent bits with ``p(x_i = 1) = σ(logits_i)``, ``x`` of the logits' shape.

    Args:
      logits: ``ℓ`` (any shape ``S``), finite.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> base = umrf.models.FactorizedBernoulli(jnp.zeros(3))
      >>> round(float(base.log_partition()), 4), base.sample(jax.random.key(0), (2,)).shape
      (2.0794, (2, 3))
    """

    __slots__ = ("logits",)

    def __init__(self, logits: Any) -> None:
        self.logits = _logits("logits", logits, allow_neg_inf=False)

    @classmethod
    def from_mean(cls, mean: Any, *, eps: float = 1e-3) -> FactorizedBernoulli:
        """The base with ``p(x_i = 1) = clip(mean_i, eps, 1 - eps)`` (e.g. data means)."""
        p = jnp.clip(jnp.asarray(mean, jnp.result_type(float)), eps, 1.0 - eps)
        return cls(jnp.log(p) - jnp.log1p(-p))

    def tree_flatten(self):  # noqa: D102
        return (self.logits,), None

    @classmethod
    def tree_unflatten(cls, aux, children):  # noqa: D102
        obj = object.__new__(cls)
        (obj.logits,) = children
        return obj

    def __repr__(self) -> str:
        return f"FactorizedBernoulli(shape={tuple(jnp.shape(self.logits))})"

    def energy(self, x: Any) -> jax.Array:
        """``E(x) = -ℓᵀx`` (linear, so exact on ``[0, 1]^S`` too)."""
        x = jnp.asarray(x).astype(jnp.result_type(self.logits))
        return -jnp.sum(self.logits * x)

    def log_partition(self) -> jax.Array:
        """``log Z = Σ_i softplus(ℓ_i)``."""
        return jnp.sum(jax.nn.softplus(self.logits))

    def log_prob(self, x: Any) -> jax.Array:
        """Normalised ``log p(x)``."""
        return -self.energy(x) - self.log_partition()

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Exact int32 samples of shape ``shape + S``."""
        shape = tuple(shape) + tuple(jnp.shape(self.logits))
        p = jnp.broadcast_to(jax.nn.sigmoid(self.logits), shape)
        return jax.random.bernoulli(key, p, shape).astype(jnp.int32)


@jax.tree_util.register_pytree_node_class
class FactorizedCategorical:
    """Independent categorical variables ``p(x_i = k) ∝ exp(logits[i, k])``.

    Args:
      logits: shape ``S + (K,)``; ``-inf`` marks a category the variable does
        not have. Every variable needs at least one finite logit.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> base = umrf.models.FactorizedCategorical(jnp.array([[0.0, 0.0, -jnp.inf]]))
      >>> round(float(base.log_partition()), 4), base.sample(jax.random.key(0)).shape
      (0.6931, (1,))
    """

    __slots__ = ("logits",)

    def __init__(self, logits: Any) -> None:
        arr = _logits("logits", logits, allow_neg_inf=True)
        if arr.ndim < 1:
            raise ValueError("`logits` must have a trailing category axis; got a scalar.")
        if is_concrete(arr) and bool(jnp.any(jnp.all(arr == -jnp.inf, axis=-1))):
            raise ValueError("every variable needs at least one finite logit in `logits`.")
        self.logits = arr

    @classmethod
    def uniform(cls, cardinalities: Any) -> FactorizedCategorical:
        """Uniform over each variable's own states (``-inf`` beyond ``K_i``)."""
        cards = [int(k) for k in cardinalities]
        kmax = max(cards)
        valid = jnp.arange(kmax)[None, :] < jnp.asarray(cards)[:, None]
        return cls(jnp.where(valid, 0.0, -jnp.inf))

    def tree_flatten(self):  # noqa: D102
        return (self.logits,), None

    @classmethod
    def tree_unflatten(cls, aux, children):  # noqa: D102
        obj = object.__new__(cls)
        (obj.logits,) = children
        return obj

    def __repr__(self) -> str:
        return f"FactorizedCategorical(shape={tuple(jnp.shape(self.logits))})"

    def energy(self, x_one_hot: Any) -> jax.Array:
        """``E(X) = -Σ X_{ik} ℓ_{ik}`` on the one-hot encoding (absent categories contribute 0)."""
        x = jnp.asarray(x_one_hot).astype(jnp.result_type(self.logits))
        finite = self.logits > -jnp.inf
        return -jnp.sum(jnp.where(finite, self.logits, 0.0) * x)

    def log_partition(self) -> jax.Array:
        """``log Z = Σ_i logsumexp_k ℓ_{ik}``."""
        return jnp.sum(jax.nn.logsumexp(self.logits, axis=-1))

    def log_prob(self, x_one_hot: Any) -> jax.Array:
        """Normalised ``log p`` of a one-hot encoded state."""
        return -self.energy(x_one_hot) - self.log_partition()

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Exact int32 states of shape ``shape + S``."""
        shape = tuple(shape) + tuple(jnp.shape(self.logits))[:-1]
        return jax.random.categorical(key, self.logits, axis=-1, shape=shape).astype(jnp.int32)
