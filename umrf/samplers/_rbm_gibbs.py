r"""Block Gibbs sampling of a Bernoulli RBM: ``v → h → v``, one sweep per step.

The RBM's graph is bipartite, so each layer is one colour class of an exact
block Gibbs sampler (Geman & Geman 1984; Hinton 2002):

    h_j ~ Bernoulli(σ(c_j + (vᵀW)_j)),      then      v_i ~ Bernoulli(σ(b_i + (W h)_i)).

One ``step`` is this full sweep; its visible chain leaves the marginal
``p(v) ∝ exp(-F(v))`` invariant and the pair ``(v, h)`` the joint. The
position is the visible configuration (the chain of ``sample_chains`` and of
the CD/PCD negatives); the state also keeps the last hidden draw. Both layers
are drawn from ONE ``jax.random.uniform`` call of ``n_h + n_v`` numbers.

Positions are ``{0, 1}`` arrays of shape ``(n_v,)`` in any int or float dtype
(the data's own dtype is kept, so CD chains can start at float data).
Clamped visible units (``evidence``) never change: the chain then samples
``p(v_free | v_observed)``, e.g. to in-paint an image.

The static part of a sampler is the hashable tuple ``(n_v, n_h, evidence)``
bound with :func:`umrf.samplers.bind`, so samplers built from RBMs of the
same size compare equal and share compiled programs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import is_concrete
from umrf.models import BernoulliRBM
from umrf.samplers._base import SamplingAlgorithm, bind
from umrf.samplers._gibbs_info import GibbsInfo

__all__ = ["RBMGibbsState", "rbm_gibbs"]


class RBMGibbsState(NamedTuple):
    """State of one RBM chain.

    Attributes:
      position: the visible configuration ``v``, shape ``(n_v,)``, values 0/1
        in the dtype of the initial position.
      hidden: the hidden configuration drawn in the last sweep (zeros after
        ``init``), shape ``(n_h,)``, same dtype.
    """

    position: jax.Array
    hidden: jax.Array


def _check_params(params: Any, shape: tuple[int, int]) -> None:
    if not isinstance(params, BernoulliRBM):
        raise TypeError(
            f"`params` must be a umrf.models.BernoulliRBM; got {type(params).__name__}."
        )
    if (params.num_visible, params.num_hidden) != shape:
        raise ValueError(
            f"`params` is an RBM with {params.num_visible} visible and {params.num_hidden} hidden "
            f"units; the sampler was built for {shape[0]} and {shape[1]}. Build a new sampler."
        )


def _check_position(x: Any, num_visible: int) -> jax.Array:
    x = x if isinstance(x, jax.core.Tracer) else jnp.asarray(x)
    if x.shape != (num_visible,):
        raise ValueError(
            f"`position` must be one visible configuration of shape ({num_visible},); got "
            f"{x.shape}. Use umrf.sample_chains for many chains."
        )
    if not (jnp.issubdtype(x.dtype, jnp.integer) or jnp.issubdtype(x.dtype, jnp.floating)):
        raise TypeError(f"`position` must be an int or float array of 0/1; got {x.dtype}.")
    if is_concrete(x):
        arr = np.asarray(x)
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError("`position` must hold binary units (0 or 1 in every entry).")
    return x


def _apply_evidence(v: jax.Array, evidence: tuple[tuple[int, int], ...]) -> jax.Array:
    if not evidence:
        return v
    idx = np.asarray([i for i, _ in evidence], np.int32)
    val = np.asarray([s for _, s in evidence])
    return v.at[idx].set(jnp.asarray(val, v.dtype))


def _rbm_init(
    position: Any, params: BernoulliRBM, *, shape: tuple[int, int], evidence: tuple
) -> RBMGibbsState:
    _check_params(params, shape)
    v = _apply_evidence(_check_position(position, shape[0]), evidence)
    return RBMGibbsState(v, jnp.zeros((shape[1],), v.dtype))


def _rbm_step(
    key: jax.Array,
    state: RBMGibbsState,
    params: BernoulliRBM,
    *,
    shape: tuple[int, int],
    evidence: tuple,
) -> tuple[RBMGibbsState, GibbsInfo]:
    _check_params(params, shape)
    nv, nh = shape
    dtype = params.dtype
    v = state.position.astype(dtype)
    bad = jnp.any((v != 0) & (v != 1))  # only possible under jit (init checks concrete input)
    u = jax.random.uniform(key, (nh + nv,), dtype)
    p_h = jax.nn.sigmoid(params.c_hidden + v @ params.W)
    h = (u[:nh] < p_h).astype(dtype)
    p_v = jax.nn.sigmoid(params.b_visible + params.W @ h)
    v_new = (u[nh:] < p_v).astype(state.position.dtype)
    v_new = _apply_evidence(v_new, evidence)
    diverged = bad | jnp.any(jnp.isnan(p_h)) | jnp.any(jnp.isnan(p_v))
    new = RBMGibbsState(v_new, h.astype(state.position.dtype))
    return new, GibbsInfo(jnp.ones((), dtype), diverged)


def _check_evidence(evidence: Any, num_visible: int) -> tuple[tuple[int, int], ...]:
    if evidence is None:
        return ()
    if not isinstance(evidence, Mapping):
        raise TypeError(
            f"`evidence` must be a mapping {{visible unit: 0 or 1}}; got {type(evidence).__name__}."
        )
    out = {}
    for i, s in evidence.items():
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < num_visible:
            raise ValueError(f"`evidence` names unit {i!r}; visible units: 0..{num_visible - 1}.")
        if isinstance(s, bool) or s not in (0, 1):
            raise ValueError(f"`evidence` sets unit {i} to {s!r}; a visible unit is 0 or 1.")
        out[int(i)] = int(s)
    return tuple(sorted(out.items()))


def rbm_gibbs(rbm: BernoulliRBM, *, evidence: Mapping | None = None) -> SamplingAlgorithm:
    r"""Block Gibbs sampler of a Bernoulli RBM; one ``step`` is one sweep ``v → h → v``.

    Also reached as ``umrf.samplers.gibbs(rbm)``.

    Args:
      rbm: a :class:`~umrf.models.BernoulliRBM`; it fixes the sizes (the
        numbers come from the ``params`` passed to ``init``/``step``).
      evidence: keyword-only ``{visible unit: 0 or 1}`` clamped forever.

    Returns:
      ``SamplingAlgorithm(init, step)`` with :class:`RBMGibbsState` and
      :class:`~umrf.samplers.GibbsInfo` (``diverged`` flags NaN conditionals,
      e.g. from non-finite weights, and non-binary incoming states, which can
      only arrive under ``jit``). Samplers of equal sizes and evidence compare
      equal.

    Raises:
      TypeError/ValueError: not an RBM, malformed evidence; at ``init``/``step``:
        params of other sizes, a position of the wrong shape or not binary.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> rbm = umrf.models.BernoulliRBM.random(jax.random.key(0), 6, 3, scale=1.0)
      >>> alg = umrf.samplers.gibbs(rbm)
      >>> final, trace = umrf.sample_chains(
      ...     alg, jax.random.key(1), rbm, jnp.zeros((4, 6), jnp.int8), num_steps=10)
      >>> final.position.shape, final.position.dtype, bool(trace.info.diverged.any())
      ((4, 6), dtype('int8'), False)

    References:
      S. Geman, D. Geman, IEEE TPAMI 6 (1984). G. E. Hinton, Neural
      Computation 14 (2002).
    """
    if not isinstance(rbm, BernoulliRBM):
        raise TypeError(f"`rbm` must be a umrf.models.BernoulliRBM; got {type(rbm).__name__}.")
    shape = (rbm.num_visible, rbm.num_hidden)
    ev = _check_evidence(evidence, shape[0])
    return SamplingAlgorithm(
        bind(_rbm_init, shape=shape, evidence=ev), bind(_rbm_step, shape=shape, evidence=ev)
    )
