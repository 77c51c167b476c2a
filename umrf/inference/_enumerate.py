"""Brute-force enumeration of a small ``DiscreteMRF``'s joint distribution.

``p(x) = exp(Σ_k θ_k(x_{C_k}) − log Z)`` evaluated on the full table of
``Π_i K_i`` configurations: every factor is broadcast onto the axes
``(x_0, …, x_{n−1})`` and added. Independent of the elimination engine, it is
the oracle the tests check exact inference against.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from umrf.inference._exact import safe_logsumexp
from umrf.models import DiscreteMRF

DEFAULT_MAX_JOINT_SIZE = 2**22


def unnormalized_log_joint(
    mrf: DiscreteMRF, *, max_table_size: int = DEFAULT_MAX_JOINT_SIZE
) -> jax.Array:
    """The table ``Σ_k θ_k(x_{C_k})`` of shape ``cardinalities`` (``−E(x)`` for every ``x``).

    Raises:
      TypeError: ``mrf`` is not a ``DiscreteMRF``.
      ValueError: the table would have more than ``max_table_size`` entries.
    """
    if not isinstance(mrf, DiscreteMRF):
        raise TypeError(f"`mrf` must be a umrf.models.DiscreteMRF; got {type(mrf).__name__}.")
    cards = mrf.cardinalities
    size = math.prod(cards)
    if size > max_table_size:
        raise ValueError(
            f"The joint table of this model has {size:,} entries, above "
            f"`max_table_size`={max_table_size:,}; "
            "enumeration is for tiny models (use umrf.inference.log_partition / marginals), or "
            "raise `max_table_size`."
        )
    tables = [f.log_potential for f in mrf.factors]
    dtype = jnp.result_type(*tables, jnp.float32) if tables else jnp.float32
    out = jnp.zeros(cards, dtype)
    for f in mrf.factors:
        order = sorted(range(len(f.scope)), key=lambda a: f.scope[a])
        t = jnp.transpose(jnp.asarray(f.log_potential, dtype), order)
        shape = tuple(cards[v] if v in f.scope else 1 for v in range(len(cards)))
        out = out + jnp.reshape(t, shape)
    return out


def enumerate_joint(
    mrf: DiscreteMRF, *, log: bool = False, max_table_size: int = DEFAULT_MAX_JOINT_SIZE
) -> jax.Array:
    """The exact joint ``p(x)`` as a table of shape ``cardinalities`` (brute force).

    Args:
      mrf: a small model.
      log: return ``log p(x)`` instead of ``p(x)``.
      max_table_size: refuse models with more than this many configurations.

    Returns:
      The normalised joint (axis ``i`` is variable ``i``). When ``Z = 0``
      there is no distribution and the table is all zeros (all ``−inf`` with
      ``log=True``).

    Raises:
      TypeError, ValueError: as :func:`unnormalized_log_joint`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from umrf.models import DiscreteMRF, Factor
      >>> mrf = DiscreteMRF([2], [Factor((0,), jnp.log(jnp.array([1.0, 3.0])))])
      >>> enumerate_joint(mrf).tolist()
      [0.25, 0.75]
    """
    table = unnormalized_log_joint(mrf, max_table_size=max_table_size)
    flat = jnp.reshape(table, (-1,))
    log_z = safe_logsumexp(flat, 0)
    safe_z = jnp.where(jnp.isfinite(log_z), log_z, jnp.zeros_like(log_z))
    logp = jnp.where(jnp.isfinite(log_z), table - safe_z, jnp.full_like(table, -jnp.inf))
    return logp if log else jnp.exp(logp)
