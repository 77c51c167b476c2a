"""Log-space reductions that stay NaN-free with ``-inf`` entries (forbidden moves).

``jax.nn.logsumexp`` returns ``-inf`` for an all ``-inf`` row but its gradient
there is ``0/0 = NaN``. Linear-chain CRFs meet such rows whenever a label is
unreachable (a ``-inf`` transition or emission), so the chain code uses
:func:`logsumexp_last`, whose derivative is the softmax with the convention
``0 · (anything) = 0`` for rows whose result is ``-inf``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_jvp
def logsumexp_last(x: jax.Array) -> jax.Array:
    """``log Σ_k exp(x[..., k])`` over the last axis, exact for ``-inf`` entries.

    Args:
      x: array ``(..., K)``; entries may be ``-inf`` (never ``+inf`` or NaN).

    Returns:
      array ``(...)``; ``-inf`` where every entry of the row is ``-inf``.
    """
    m = jnp.max(x, axis=-1)
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    return m + jnp.log(jnp.sum(jnp.exp(x - m[..., None]), axis=-1))


@logsumexp_last.defjvp
def _logsumexp_last_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]):
    (x,), (dx,) = primals, tangents
    out = logsumexp_last(x)
    finite = jnp.isfinite(out)[..., None]
    w = jnp.where(finite, jnp.exp(x - jnp.where(finite, out[..., None], 0.0)), 0.0)
    # Entries with weight 0 (x = -inf) contribute nothing, even if their tangent is inf.
    dout = jnp.sum(jnp.where(w > 0, w * dx, jnp.zeros_like(dx)), axis=-1)
    return out, dout


def log_matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """Log-semiring matrix product ``C[..., i, j] = log Σ_k exp(A[..., i, k] + B[..., k, j])``."""
    return logsumexp_last(a[..., :, None, :] + jnp.swapaxes(b, -1, -2)[..., None, :, :])


def max_matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """Max-plus (tropical) matrix product ``C[..., i, j] = max_k A[..., i, k] + B[..., k, j]``."""
    return jnp.max(a[..., :, None, :] + jnp.swapaxes(b, -1, -2)[..., None, :, :], axis=-1)
