r"""k-NN precision and recall of generated samples (Kynkäänniemi et al. 2019).

The support of a sample set is estimated as the union of balls around its
points, each with radius the distance to the point's ``k``-th nearest
neighbour within the set (itself excluded):

.. math::

   \mathcal M(S) = \bigcup_{s \in S} B\big(s, \mathrm{NN}_k(s, S)\big),\qquad
   \mathrm{precision} = \frac{1}{|G|}\sum_{g \in G} 1[g \in \mathcal M(R)],\qquad
   \mathrm{recall} = \frac{1}{|R|}\sum_{r \in R} 1[r \in \mathcal M(G)],

for real samples ``R`` and generated samples ``G`` (a point on a ball's
boundary is inside). Precision is the fraction of generated samples that look
like data (a diffuse cloud around the data scores low); recall the fraction
of the data the generator covers (a collapsed generator scores low). MMD
mixes both into one number, so it misses a sharp-but-thin or a
broad-but-blurred sample set; these two do not. Both depend on ``k`` and on
the sample sizes, so they are only meaningful beside the data-vs-data
baseline: the same figures for a second, independent data sample of the
same size.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["PrecisionRecall", "knn_precision_recall"]

_BLOCK = 1024


class PrecisionRecall(NamedTuple):
    """k-NN precision and recall (floats in ``[0, 1]``)."""

    precision: float
    recall: float


def _sqdist(a: jax.Array, b: jax.Array) -> jax.Array:
    d = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
    return jnp.maximum(d, 0.0)


@functools.partial(jax.jit, static_argnames="k")
def _kth_block(rows: jax.Array, points: jax.Array, k: int) -> jax.Array:
    """Squared distance of each row to its ``k``-th nearest point, the row itself excluded."""
    neg_smallest, _ = jax.lax.top_k(-_sqdist(rows, points), k + 1)
    return -neg_smallest[:, k]


@jax.jit
def _covered_block(queries: jax.Array, centres: jax.Array, radii_sq: jax.Array) -> jax.Array:
    return jnp.any(_sqdist(queries, centres) <= radii_sq[None, :], axis=1)


def _blocks(x: jax.Array) -> list[jax.Array]:
    return [x[i : i + _BLOCK] for i in range(0, x.shape[0], _BLOCK)]


def _radii_sq(points: jax.Array, k: int) -> jax.Array:
    return jnp.concatenate([_kth_block(b, points, k) for b in _blocks(points)])


def _coverage(queries: jax.Array, centres: jax.Array, radii_sq: jax.Array) -> float:
    hits = sum(int(jnp.sum(_covered_block(b, centres, radii_sq))) for b in _blocks(queries))
    return hits / queries.shape[0]


def knn_precision_recall(real: jax.Array, generated: jax.Array, *, k: int = 3) -> PrecisionRecall:
    r"""k-NN precision and recall of ``generated`` against ``real`` (module docstring).

    Distances are Euclidean on the flattened samples; the computation is
    blocked (1 024 rows at a time), so memory grows linearly with the sample
    sizes. Points are compared in float32, so a point at exactly a ball's
    radius counts as inside up to rounding.

    Args:
      real: ``(n, ...)`` data samples, ``n > k``.
      generated: ``(m, ...)`` model samples, ``m > k``, same per-sample shape.
      k: keyword-only neighbourhood size ``k >= 1`` (the paper uses 3).

    Returns:
      :class:`PrecisionRecall` ``(precision, recall)``.

    Raises:
      ValueError: mismatched shapes, too few samples, a bad ``k`` or
        non-finite samples.

    Examples:
      >>> import numpy as np, umrf
      >>> real = np.array([[0.0], [1.0], [2.0], [3.0]])
      >>> fake = np.array([[0.5], [0.7], [10.0]])
      >>> umrf.metrics.knn_precision_recall(real, fake, k=1)
      PrecisionRecall(precision=0.6666666666666666, recall=0.75)

    References:
      Kynkäänniemi, Karras, Laine, Lehtinen & Aila, *Improved precision and
      recall metric for assessing generative models*, NeurIPS 2019.
    """
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise ValueError(f"`k` must be an int >= 1; got {k!r}.")
    k = int(k)
    r = np.asarray(real, dtype=np.float32)
    g = np.asarray(generated, dtype=np.float32)
    if r.ndim < 2 or g.ndim < 2 or r.shape[1:] != g.shape[1:]:
        raise ValueError(
            "`real` and `generated` must be (n, ...) and (m, ...) with the same per-sample "
            f"shape; got {r.shape} and {g.shape}."
        )
    for name, a in (("real", r), ("generated", g)):
        if a.shape[0] <= k:
            raise ValueError(f"`{name}` needs more than k = {k} samples; got {a.shape[0]}.")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"`{name}` contains NaN or infinite values; pass finite samples.")
    r = jnp.asarray(r.reshape(r.shape[0], -1))
    g = jnp.asarray(g.reshape(g.shape[0], -1))
    precision = _coverage(g, r, _radii_sq(r, k))
    recall = _coverage(r, g, _radii_sq(g, k))
    return PrecisionRecall(precision=precision, recall=recall)
