r"""Chromatic block Gibbs sampling for discrete MRFs.

Given a proper colouring of the MRF's graph (``umrf.graphs.colouring``), the
variables of one colour class share no factor, so they are conditionally
independent given all the others and can be redrawn *in parallel* from their
exact full conditionals

    p(x_i = s | x_{-i}) ∝ exp( Σ_{C ∋ i} log ψ_C(x_{C \ i}, x_i = s) ).

One ``step`` is one sweep: every colour class updated once, in order. Each
colour update is an exact Gibbs update of a block, so the sweep leaves
``p`` invariant; it is irreducible whenever ``p > 0`` everywhere (Geman &
Geman 1984; Gonzalez et al., "Parallel Gibbs Sampling: From Colored Fields to
Thin Junction Trees", AISTATS 2011).

The sweep is vectorised: all log-potential tables are raveled into one flat
vector, and for each colour class a static index array of shape
``(|V_c|, D_c, K_max)`` (``D_c`` = most factors on one variable of the class)
picks every conditional log-potential in ONE gather, whatever the number of
factors (no Python loop over sites; the only per-factor work is raveling the tables). The
structure (colouring, gather indices) is static; the log-potentials are the
traced ``params``: ``alg.step(key, state, mrf)`` with a new MRF of the same
structure does not recompile (DESIGN.md §6).

Lattice models (:func:`umrf.models.ising`, :func:`umrf.models.potts`)
dispatch to a dedicated checkerboard sampler (see
``umrf.samplers.lattice_gibbs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._validation import is_concrete
from umrf.graphs import colouring
from umrf.models._discrete_mrf import DiscreteMRF
from umrf._structure import check_same_structure, structure_of
from umrf.samplers._base import SamplingAlgorithm


class GibbsState(NamedTuple):
    """State of one Gibbs chain.

    Attributes:
      position: ``(n,)`` int32 states, one per variable.
      energy: ``E(position) = -Σ_k log ψ_k`` under the params of the last
        init/step (``+inf`` for a zero-probability configuration).
    """

    position: jax.Array
    energy: jax.Array


class GibbsInfo(NamedTuple):
    """Diagnostics of one sweep.

    Attributes:
      acceptance_rate: always ``1.0`` (Gibbs moves are always accepted).
      diverged: True when some conditional had no state of positive
        probability (all ``-inf`` or NaN log-potentials) or the new
        configuration has non-finite energy; the chain is then not sampling
        ``p`` (e.g. it was started at a zero-probability configuration).
    """

    acceptance_rate: jax.Array
    diverged: jax.Array


def _check_evidence(evidence: Any, cards: tuple[int, ...]) -> dict[int, int]:
    if evidence is None:
        return {}
    if not isinstance(evidence, Mapping):
        raise TypeError(
            "`evidence` must be a mapping {variable index: state}; got "
            f"{type(evidence).__name__}."
        )
    out = {}
    for v, s in evidence.items():
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 0 <= v < len(cards):
            raise ValueError(
                f"`evidence` names variable {v!r}; variables are ints in 0..{len(cards) - 1}."
            )
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or not 0 <= s < cards[v]:
            raise ValueError(
                f"`evidence` sets variable {v} to {s!r}, outside its states 0..{cards[v] - 1}."
            )
        out[int(v)] = int(s)
    return out


def check_discrete_position(name: str, x: Any, cards: tuple[int, ...]) -> jax.Array:
    """Validate a configuration of shape ``(n,)`` with ``0 <= x_i < K_i``; return it as int32."""
    x = x if isinstance(x, jax.core.Tracer) else jnp.asarray(x)
    if x.shape != (len(cards),):
        raise ValueError(
            f"`{name}` must have shape ({len(cards)},), one state per variable; got {x.shape}."
        )
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"`{name}` must be an int array of states; got dtype {x.dtype}.")
    if is_concrete(x):
        arr = np.asarray(x)
        bad = np.nonzero((arr < 0) | (arr >= np.asarray(cards)))[0]
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"`{name}[{i}]` = {int(arr[i])} is outside the states 0..{cards[i] - 1} of "
                f"variable {i}."
            )
    return x.astype(jnp.int32)


class _FlatIndex:
    """Static gather indices into the concatenation of all raveled log-potential tables.

    Factor ``k``'s entry ``x_{C_k}`` sits at ``offset_k + Σ_a x_{C_k[a]}·stride_{k,a}``
    of ``flat = concat(ravel(θ_1), …, ravel(θ_K), [0])``; the final zero cell
    is the target of padded incidences. For colour class ``V_c`` the
    conditional log-potentials are then ONE gather of shape
    ``(|V_c|, D_c, K_max)`` (``D_c`` the largest number of factors on a
    variable of the class) and a sum over ``D_c``.
    """

    def __init__(self, mrf: DiscreteMRF):
        cards = mrf.cardinalities
        self.kmax = max(cards, default=1)
        self.offsets, self.strides = [], []
        off = 0
        for f in mrf.factors:
            shape = [cards[v] for v in f.scope]
            st = [int(np.prod(shape[a + 1 :], dtype=np.int64)) for a in range(len(shape))]
            self.offsets.append(off)
            self.strides.append(st)
            off += int(np.prod(shape, dtype=np.int64))
        self.size = off
        self.dummy = off
        self.arity = max((len(f.scope) for f in mrf.factors), default=0)
        a = max(self.arity, 1)
        nf = len(mrf.factors)
        self.e_vars = np.zeros((max(nf, 1), a), np.int32)
        self.e_str = np.zeros((max(nf, 1), a), np.int32)
        self.e_off = np.full((max(nf, 1),), self.dummy, np.int32)
        for k, f in enumerate(mrf.factors):
            self.e_off[k] = self.offsets[k]
            self.e_vars[k, : len(f.scope)] = f.scope
            self.e_str[k, : len(f.scope)] = self.strides[k]
        self.incident: list[list[tuple[int, int]]] = [[] for _ in cards]
        for k, f in enumerate(mrf.factors):
            for j, v in enumerate(f.scope):
                self.incident[v].append((k, j))

    def colour_plan(self, cls: np.ndarray, cards: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        """``(base, other_vars, other_strides, state_index, invalid)`` for one colour class."""
        n_c = len(cls)
        d = max([len(self.incident[v]) for v in cls] + [1])
        a = max(self.arity - 1, 1)
        base = np.full((n_c, d), self.dummy, np.int32)
        sstr = np.zeros((n_c, d), np.int32)
        ovars = np.zeros((n_c, d, a), np.int32)
        ostr = np.zeros((n_c, d, a), np.int32)
        for r, v in enumerate(cls):
            for e, (k, j) in enumerate(self.incident[v]):
                base[r, e] = self.offsets[k]
                sstr[r, e] = self.strides[k][j]
                others = [
                    (u, st)
                    for l, (u, st) in enumerate(
                        zip(self.e_vars[k][: len(self.strides[k])], self.strides[k], strict=True)
                    )
                    if l != j
                ]
                for b, (u, st) in enumerate(others):
                    ovars[r, e, b] = u
                    ostr[r, e, b] = st
        kv = np.asarray([cards[v] for v in cls], np.int32)
        states = np.arange(self.kmax, dtype=np.int32)[None, :]
        state_index = np.minimum(states, kv[:, None] - 1)  # (n_c, K): stay inside each table
        invalid = states >= kv[:, None]
        # per-state offset of every incidence: (n_c, d, K)
        state_off = base[:, :, None] + sstr[:, :, None] * state_index[:, None, :]
        return state_off, ovars, ostr, invalid

    def flat(self, mrf: DiscreteMRF, dtype: Any) -> jax.Array:
        parts = [jnp.ravel(f.log_potential).astype(dtype) for f in mrf.factors]
        return jnp.concatenate(parts + [jnp.zeros((1,), dtype)])

    def log_score(self, flat: jax.Array, x: jax.Array) -> jax.Array:
        idx = self.e_off + jnp.sum(x[self.e_vars] * self.e_str, axis=1)
        return jnp.sum(flat[idx])


def _discrete_gibbs(mrf: DiscreteMRF, evidence: Any) -> SamplingAlgorithm:
    cards = tuple(mrf.cardinalities)
    structure = structure_of(mrf)
    ev = _check_evidence(evidence, cards)
    ev_vars = np.asarray(sorted(ev), dtype=np.int32)
    ev_vals = np.asarray([ev[v] for v in sorted(ev)], dtype=np.int32)
    free = set(range(len(cards))) - set(ev)
    index = _FlatIndex(mrf)
    plans = []
    for cls in colouring(mrf.graph):
        cls = np.asarray([v for v in cls.tolist() if v in free], dtype=np.int32)
        if cls.size:
            plans.append((cls, *index.colour_plan(cls, cards)))

    def _dtype(params: DiscreteMRF) -> Any:
        return jnp.result_type(*(f.log_potential for f in params.factors), jnp.float32)

    def init(position: Any, params: DiscreteMRF) -> GibbsState:
        check_same_structure("params", params, structure)
        x = check_discrete_position("position", position, cards)
        if ev_vars.size:
            x = x.at[ev_vars].set(ev_vals)
        flat = index.flat(params, _dtype(params))
        return GibbsState(x, -index.log_score(flat, x))

    def step(key: jax.Array, state: GibbsState, params: DiscreteMRF) -> tuple[GibbsState, Any]:
        check_same_structure("params", params, structure)
        dtype = _dtype(params)
        flat = index.flat(params, dtype)
        x = state.position
        stuck = jnp.zeros((), bool)
        keys = jax.random.split(key, max(len(plans), 1))
        for c, (cls, state_off, ovars, ostr, invalid) in enumerate(plans):
            rest = jnp.sum(x[ovars] * ostr, axis=-1)  # (n_c, d)
            logits = jnp.sum(flat[state_off + rest[:, :, None]], axis=1)  # (n_c, K)
            logits = jnp.where(invalid, -jnp.inf, logits)
            top = jnp.max(logits, axis=-1)
            stuck = stuck | jnp.any(~(top > -jnp.inf))
            new = jax.random.categorical(keys[c], logits, axis=-1).astype(jnp.int32)
            x = x.at[cls].set(new)
        energy = -index.log_score(flat, x)
        diverged = stuck | ~jnp.isfinite(energy)
        return GibbsState(x, energy), GibbsInfo(jnp.ones((), dtype), diverged)

    return SamplingAlgorithm(init, step)


def gibbs(mrf_or_model: Any, evidence: Mapping | None = None) -> SamplingAlgorithm:
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

    Args:
      mrf_or_model: a ``DiscreteMRF`` or an Ising/Potts lattice model. It
        fixes the structure; the numbers come from the ``params`` passed to
        ``init``/``step`` (any model of the same structure).
      evidence: optional ``{variable: state}`` (for a lattice: ``{site: value}``
        with ``site`` a coordinate tuple or flat index and ``value`` a spin
        ``±1`` or a Potts state). Clamped variables keep their value forever;
        the chain samples ``p(x_free | evidence)``.

    Returns:
      ``SamplingAlgorithm(init, step)``: ``init(position, params) -> GibbsState``,
      ``step(key, state, params) -> (GibbsState, GibbsInfo)``; pure, jit/vmap
      safe, runs under :func:`umrf.samplers.sample_chains`.

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
      >>> state.position.shape, bool(info.diverged)
      ((2,), False)

    References:
      S. Geman, D. Geman, "Stochastic relaxation, Gibbs distributions, and the
      Bayesian restoration of images", IEEE TPAMI 1984. J. Gonzalez, Y. Low,
      A. Gretton, C. Guestrin, "Parallel Gibbs Sampling", AISTATS 2011.
    """
    from umrf.models._lattice import Ising, Potts
    from umrf.samplers._lattice_gibbs import lattice_gibbs

    if isinstance(mrf_or_model, Ising | Potts):
        return lattice_gibbs(mrf_or_model, evidence=evidence)
    if isinstance(mrf_or_model, DiscreteMRF):
        return _discrete_gibbs(mrf_or_model, evidence)
    raise TypeError(
        "`mrf_or_model` must be a umrf.models.DiscreteMRF, Ising or Potts model; got "
        f"{type(mrf_or_model).__name__}."
    )
