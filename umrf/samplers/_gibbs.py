r"""``umrf.samplers.gibbs``: exact Gibbs sweeps for any umrf discrete model.

A :class:`~umrf.models.DiscreteMRF` gets the chromatic block sampler of
``umrf.samplers._mrf_gibbs``; an Ising or Potts lattice gets the checkerboard
sampler of ``umrf.samplers._lattice_gibbs``. Both have the common sampler shape
and value equality (DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from umrf.models import BernoulliRBM, DiscreteMRF, Ising, Potts
from umrf.samplers._base import SamplingAlgorithm
from umrf.samplers._lattice_gibbs import lattice_gibbs
from umrf.samplers._mrf_gibbs import mrf_gibbs
from umrf.samplers._rbm_gibbs import rbm_gibbs

__all__ = ["gibbs"]


def gibbs(mrf_or_model: Any, *, evidence: Mapping | None = None) -> SamplingAlgorithm:
    r"""Chromatic block Gibbs sampler; one ``step`` is one full sweep.

    For a :class:`~umrf.models.DiscreteMRF` the variables are coloured with
    :func:`umrf.graphs.colouring` (a grid gets the checkerboard) and each colour
    class ``V_c`` is redrawn in parallel from

    .. math:: p(x_i = s \mid x_{-i}) \propto
              \exp\Big(\sum_{C \ni i} \log\psi_C(x_{C\setminus i}, s)\Big),
              \quad i \in V_c,

    which is exact block Gibbs because no factor joins two variables of one
    class. Lattice models (:class:`~umrf.models.Ising`,
    :class:`~umrf.models.Potts`) get the fast checkerboard sampler of
    :func:`umrf.samplers.lattice_gibbs` (spins/states as an int8 lattice).
    A :class:`~umrf.models.BernoulliRBM` gets the layer sweep ``v → h → v`` of
    :func:`umrf.samplers.rbm_gibbs` (the position is the visible layer).

    Args:
      mrf_or_model: a ``DiscreteMRF`` or an Ising/Potts lattice model. It
        fixes the structure; the numbers come from the ``params`` passed to
        ``init``/``step`` (any model of the same structure).
      evidence: keyword-only ``{variable: state}`` (for a lattice: ``{site:
        value}`` with ``site`` a coordinate tuple or flat index and ``value`` a
        spin ``±1`` or a Potts state). Clamped variables keep their value
        forever; the chain samples ``p(x_free | evidence)``.

    Returns:
      ``SamplingAlgorithm(init, step)``: ``init(position, params) -> GibbsState``,
      ``step(key, state, params) -> (GibbsState, GibbsInfo)``; pure, jit/vmap
      safe, runs under :func:`umrf.sample_chains`. Samplers built from models
      of the same structure with equal evidence compare (and hash) equal, so
      rebuilding one never recompiles.

    Raises:
      TypeError/ValueError: an unsupported model, malformed evidence, a state
        outside its cardinality; at ``init``/``step``: params of a different
        structure, a position of the wrong shape or out of range.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> from umrf.models import DiscreteMRF, Factor
      >>> mrf = DiscreteMRF([2, 2], [Factor((0, 1), jnp.array([[1.0, 0.0], [0.0, 1.0]]))])
      >>> alg = umrf.samplers.gibbs(mrf)
      >>> state = alg.init(jnp.zeros(2, jnp.int32), mrf)
      >>> state, info = alg.step(jax.random.key(0), state, mrf)
      >>> state.position.shape, bool(info.diverged), alg == umrf.samplers.gibbs(mrf)
      ((2,), False, True)

    References:
      S. Geman, D. Geman, "Stochastic relaxation, Gibbs distributions, and the
      Bayesian restoration of images", IEEE TPAMI 1984. J. Gonzalez, Y. Low,
      A. Gretton, C. Guestrin, "Parallel Gibbs Sampling", AISTATS 2011.
    """
    if isinstance(mrf_or_model, Ising | Potts):
        return lattice_gibbs(mrf_or_model, evidence=evidence)
    if isinstance(mrf_or_model, DiscreteMRF):
        return mrf_gibbs(mrf_or_model, evidence=evidence)
    if isinstance(mrf_or_model, BernoulliRBM):
        return rbm_gibbs(mrf_or_model, evidence=evidence)
    raise TypeError(
        "`mrf_or_model` must be a umrf.models.DiscreteMRF, Ising, Potts or BernoulliRBM; got "
        f"{type(mrf_or_model).__name__}."
    )
