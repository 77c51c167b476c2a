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

The structure (colouring, gather indices, evidence) is a hashable plan keyed
on the cardinalities, scopes, edges and evidence; ``init``/``step`` are bound
to it with :func:`umrf.samplers.bind`, so samplers built from MRFs of the same
structure compare equal and share compiled programs (DESIGN.md §3).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from umrf._structure import check_same_structure, structure_of
from umrf._validation import check_discrete_position
from umrf.graphs import colouring
from umrf.models import DiscreteMRF
from umrf.samplers._base import SamplingAlgorithm, bind
from umrf.samplers._gibbs_info import GibbsInfo


class GibbsState(NamedTuple):
    """State of one Gibbs chain.

    Attributes:
      position: ``(n,)`` int32 states, one per variable.
      energy: ``E(position) = -Σ_k log ψ_k`` under the params of the last
        init/step (``+inf`` for a zero-probability configuration).
    """

    position: jax.Array
    energy: jax.Array


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


class _FlatIndex:
    """Static gather indices into the concatenation of all raveled log-potential tables.

    Factor ``k``'s entry ``x_{C_k}`` sits at ``offset_k + Σ_a x_{C_k[a]}·stride_{k,a}``
    of ``flat = concat(ravel(θ_1), …, ravel(θ_K), [0])``; the final zero cell
    is the target of padded incidences. For colour class ``V_c`` the
    conditional log-potentials are then ONE gather of shape
    ``(|V_c|, D_c, K_max)`` (``D_c`` the largest number of factors on a
    variable of the class) and a sum over ``D_c``.
    """

    def __init__(self, cards: tuple[int, ...], scopes: tuple[tuple[int, ...], ...]):
        self.kmax = max(cards, default=1)
        self.offsets, self.strides = [], []
        off = 0
        for scope in scopes:
            shape = [cards[v] for v in scope]
            st = [int(np.prod(shape[a + 1 :], dtype=np.int64)) for a in range(len(shape))]
            self.offsets.append(off)
            self.strides.append(st)
            off += int(np.prod(shape, dtype=np.int64))
        self.size = off
        self.dummy = off
        self.arity = max((len(scope) for scope in scopes), default=0)
        a = max(self.arity, 1)
        nf = len(scopes)
        self.e_vars = np.zeros((max(nf, 1), a), np.int32)
        self.e_str = np.zeros((max(nf, 1), a), np.int32)
        self.e_off = np.full((max(nf, 1),), self.dummy, np.int32)
        for k, scope in enumerate(scopes):
            self.e_off[k] = self.offsets[k]
            self.e_vars[k, : len(scope)] = scope
            self.e_str[k, : len(scope)] = self.strides[k]
        self.incident: list[list[tuple[int, int]]] = [[] for _ in cards]
        for k, scope in enumerate(scopes):
            for j, v in enumerate(scope):
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


class _GibbsPlan:
    """Static, hashable plan of a chromatic Gibbs sampler (equal keys → equal samplers).

    ``key = (cardinalities, scopes, edges, evidence)``. Built once per key and
    shared (:func:`_plan_for`): the colouring and the gather indices.
    """

    def __init__(self, key: tuple[Any, ...]):
        cards, scopes, edges, evidence = key
        self.key = key
        self.cards = cards
        self.structure = (cards, scopes)
        self.ev_vars = np.asarray([v for v, _ in evidence], dtype=np.int32)
        self.ev_vals = np.asarray([s for _, s in evidence], dtype=np.int32)
        free = set(range(len(cards))) - {v for v, _ in evidence}
        self.index = _FlatIndex(cards, scopes)
        graph = nx.Graph()
        graph.add_nodes_from(range(len(cards)))
        graph.add_edges_from(edges)
        self.plans = []
        for cls in colouring(graph):
            cls = np.asarray([v for v in cls.tolist() if v in free], dtype=np.int32)
            if cls.size:
                self.plans.append((cls, *self.index.colour_plan(cls, cards)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _GibbsPlan) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"_GibbsPlan(num_variables={len(self.cards)}, num_factors={len(self.key[1])})"


@functools.lru_cache(maxsize=32)
def _plan_for(key: tuple[Any, ...]) -> _GibbsPlan:
    return _GibbsPlan(key)


def _dtype(params: DiscreteMRF) -> Any:
    return jnp.result_type(*(f.log_potential for f in params.factors), jnp.float32)


def _in_range(x: jax.Array, cards: tuple[int, ...]) -> jax.Array:
    return jnp.all((x >= 0) & (x < jnp.asarray(cards, jnp.int32)))


def _gibbs_init(position: Any, params: DiscreteMRF, *, plan: _GibbsPlan) -> GibbsState:
    check_same_structure("params", params, plan.structure)
    x = check_discrete_position("position", position, plan.cards)
    if plan.ev_vars.size:
        x = x.at[plan.ev_vars].set(plan.ev_vals)
    flat = plan.index.flat(params, _dtype(params))
    energy = -plan.index.log_score(flat, x)
    # Out-of-range states can only arrive traced (concrete ones raise above): NaN energy.
    return GibbsState(x, jnp.where(_in_range(x, plan.cards), energy, jnp.nan))


def _gibbs_step(
    key: jax.Array, state: GibbsState, params: DiscreteMRF, *, plan: _GibbsPlan
) -> tuple[GibbsState, GibbsInfo]:
    check_same_structure("params", params, plan.structure)
    dtype = _dtype(params)
    flat = plan.index.flat(params, dtype)
    x = state.position
    stuck = ~_in_range(x, plan.cards)
    keys = jax.random.split(key, max(len(plan.plans), 1))
    for c, (cls, state_off, ovars, ostr, invalid) in enumerate(plan.plans):
        rest = jnp.sum(x[ovars] * ostr, axis=-1)  # (n_c, d)
        logits = jnp.sum(flat[state_off + rest[:, :, None]], axis=1)  # (n_c, K)
        logits = jnp.where(invalid, -jnp.inf, logits)
        top = jnp.max(logits, axis=-1)
        stuck = stuck | jnp.any(~(top > -jnp.inf))
        new = jax.random.categorical(keys[c], logits, axis=-1).astype(jnp.int32)
        x = x.at[cls].set(new)
    energy = -plan.index.log_score(flat, x)
    diverged = stuck | ~jnp.isfinite(energy)
    return GibbsState(x, energy), GibbsInfo(jnp.ones((), dtype), diverged)


def mrf_gibbs(mrf: DiscreteMRF, *, evidence: Mapping | None = None) -> SamplingAlgorithm:
    """Chromatic block Gibbs sampler of a :class:`~umrf.models.DiscreteMRF` (see :func:`gibbs`).

    Args:
      mrf: the model; it fixes the structure (the numbers come from ``params``).
      evidence: keyword-only ``{variable: state}`` clamped forever.

    Returns:
      ``SamplingAlgorithm(init, step)`` with :class:`GibbsState` and
      :class:`~umrf.samplers.GibbsInfo`.
    """
    if not isinstance(mrf, DiscreteMRF):
        raise TypeError(f"`mrf` must be a umrf.models.DiscreteMRF; got {type(mrf).__name__}.")
    cards = tuple(mrf.cardinalities)
    ev = _check_evidence(evidence, cards)
    cards_, scopes = structure_of(mrf)
    key = (cards_, scopes, tuple(mrf.edges), tuple(sorted(ev.items())))
    plan = _plan_for(key)
    return SamplingAlgorithm(bind(_gibbs_init, plan=plan), bind(_gibbs_step, plan=plan))
