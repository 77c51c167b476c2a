r"""Parallel tempering (replica exchange) over any umrf sampler that takes a temperature.

``R`` replicas run side by side, replica ``r`` at temperature ``T_r``
(``T_0 < T_1 < … < T_{R-1}``, usually ``T_0 = 1``), each targeting
``p_r(x) ∝ exp(-E(x)/T_r)`` with its own sampler. After every step,
neighbouring replicas ``(r, r+1)`` propose to exchange their states and
accept with probability

    min(1, exp((β_r - β_{r+1}) (E(x_r) - E(x_{r+1})))),        β = 1/T,

the Metropolis–Hastings ratio of the exchange under the product target
``Π_r p_r(x_r)``, which is therefore invariant; each marginal ``p_r`` —
in particular the cold chain's ``p_0`` — is sampled exactly. Hot replicas
cross energy barriers and hand their configurations down the ladder
(Swendsen & Wang 1986; Geyer 1991; Hukushima & Nemoto 1996).

**One program for all replicas.** umrf's constructors bind their
hyperparameters with :func:`umrf.samplers.bind`; when the replicas' samplers
are the same function with the same bound values except the temperature
(any umrf sampler built at different ``temperature``, or :func:`tempered` at
different ``temperature``), the ``R`` replica steps run as one ``jax.vmap``
over replicas with the temperature as a traced number, so the step is
compiled once, not ``R`` times. Other replica samplers are stepped one after
the other in the same program.

Exchanges alternate between the even pairs ``(0,1), (2,3), …`` and the odd
pairs ``(1,2), (3,4), …`` on successive steps (deterministic even–odd
swapping, which makes replicas travel the ladder non-reversibly and faster
than random pair choice; Okabe et al. 2001, Syed et al. 2022).

**The ladder.** Swaps are accepted often only when neighbouring energy
distributions overlap: the acceptance of pair ``(r, r+1)`` falls like
``exp(-(Δβ)² Var(E) / 2)`` roughly, and ``Var(E)`` grows with the number of
variables ``n``. Rules of thumb: make the hottest temperature hot enough that
its chain mixes on its own (for a ferromagnet, above the critical
temperature), space the temperatures **geometrically**
(:func:`geometric_temperatures`, constant ``T_{r+1}/T_r``, which keeps the
acceptance roughly constant when the heat capacity varies slowly; Kofke
2002), and use enough of them that neighbouring swap rates are about
20–40 % (Kone & Kofke 2005 find ≈ 23 % optimal). The number needed grows
like ``√n · log(T_max/T_min)``. Read the per-pair rates from the trace with
:func:`swap_rates`; a pair with a rate near zero is a bottleneck: add a
temperature there.

**Which samplers.** ``make_sampler(temperature=T)`` must return an algorithm
targeting ``exp(-E(params, x)/T)`` whose State stores what the
exchange moves: the whole replica states are exchanged, so the states of
all replicas must have one structure, and their cached quantities must not
depend on ``T`` (umrf's ``mala``, ``ula``, ``gwg``, ``dula``, ``dmala`` cache
``E`` and ``∇E``, not ``E/T``). The energies ``E(x_r)`` are read from the
replica states' ``energy`` field, or computed with ``energy_fn(params, x)``
when it is given. For Gibbs samplers, which have no temperature argument,
:func:`tempered` runs a sampler on the parameters divided by ``T``, which is
tempering for every model whose energy is linear in its parameters
(``DiscreteMRF``, Ising, Potts), but NOT for an RBM's visible chain (its free
energy is not linear in the weights; temper its free energy with ``gwg`` or
``dmala`` instead).

References:
  R. H. Swendsen, J.-S. Wang, PRL 57, 1986. C. J. Geyer, "Markov chain Monte
  Carlo maximum likelihood", 1991. K. Hukushima, K. Nemoto, J. Phys. Soc.
  Jpn. 65, 1996. D. A. Kofke, J. Chem. Phys. 117, 2002. H. Kone,
  D. A. Kofke, J. Chem. Phys. 122, 2005. T. Okabe et al., Chem. Phys. Lett.
  335, 2001. S. Syed, A. Bouchard-Côté, G. Deligiannidis, A. Doucet,
  "Non-reversible parallel tempering", JRSS-B 84, 2022.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from umrf._bind import Bound
from umrf._validation import check_callable, static_positive_scalar
from umrf.samplers._base import SamplingAlgorithm, bind

__all__ = [
    "TemperedState",
    "TemperingInfo",
    "TemperingState",
    "geometric_temperatures",
    "parallel_tempering",
    "swap_rates",
    "tempered",
]

EnergyFn = Callable[[Any, Any], jax.Array]


class TemperingState(NamedTuple):
    """State of one parallel-tempering chain (``R`` replicas).

    Attributes:
      position: the replicas' positions stacked on a leading axis of size
        ``R``; ``position[0]`` is the coldest replica (``temperatures[0]``).
      replica_states: the replicas' own States, stacked the same way.
      energy: ``(R,)`` energies ``E(position[r])``.
      replica_ids: ``(R,)`` int32: which replica's trajectory each slot holds
        (a permutation; follow it to count round trips along the ladder).
      parity: int32 scalar: 0 when the next exchange tries the even pairs.
    """

    position: Any
    replica_states: Any
    energy: jax.Array
    replica_ids: jax.Array
    parity: jax.Array


class TemperingInfo(NamedTuple):
    """Diagnostics of one parallel-tempering step.

    Attributes:
      acceptance_rate: mean of the replicas' acceptance rates.
      replica_acceptance_rate: ``(R,)`` each replica's acceptance rate.
      swap_attempted: ``(R-1,)`` bool, pair ``(r, r+1)`` proposed an exchange.
      swap_acceptance: ``(R-1,)`` exchange acceptance probabilities (0 where
        not attempted).
      swap_accepted: ``(R-1,)`` bool.
      diverged: any replica diverged, or an exchange ratio was NaN.
    """

    acceptance_rate: jax.Array
    replica_acceptance_rate: jax.Array
    swap_attempted: jax.Array
    swap_acceptance: jax.Array
    swap_accepted: jax.Array
    diverged: jax.Array


def _index(tree: Any, r: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: a[r], tree)


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)


_TEMPERATURE_KWARGS = ("temperature", "beta")


def _batched(fns: Sequence[Any]) -> tuple[Any, dict, str, tuple] | None:
    """``(fn, shared_kwargs, name, values)`` when the bound functions differ only in a temperature.

    umrf's constructors bind their hyperparameters with :func:`umrf.samplers.bind`;
    replicas whose ``init``/``step`` are the same function with the same bound
    values except ``temperature`` (``beta`` for :func:`tempered`) are run as ONE
    ``vmap`` over replicas with the temperature as a traced argument (one
    compiled copy of the step instead of ``R``). Anything else: ``None``.
    """
    if not all(isinstance(f, Bound) for f in fns) or len({f.fn for f in fns}) != 1:
        return None
    keys = set(fns[0].kwargs)
    if any(set(f.kwargs) != keys for f in fns):
        return None
    varying = {k for k in keys if len({_hashable(f.kwargs[k]) for f in fns}) > 1}
    if not varying:
        return fns[0].fn, dict(fns[0].kwargs), "", ()
    if len(varying) != 1 or next(iter(varying)) not in _TEMPERATURE_KWARGS:
        return None
    (name,) = varying
    if not all(isinstance(f.kwargs[name], float) for f in fns):
        return None
    shared = {k: v for k, v in fns[0].kwargs.items() if k != name}
    return fns[0].fn, shared, name, tuple(f.kwargs[name] for f in fns)


def _hashable(v: Any) -> Any:
    try:
        hash(v)
    except TypeError:
        return id(v)
    return v


def _energies(states: Any, params: Any, energy_fn: EnergyFn | None) -> jax.Array:
    if energy_fn is not None:
        return jax.vmap(energy_fn, in_axes=(None, 0))(params, states.position)
    return states.energy


def _check_replicas(position: Any, num: int) -> None:
    for leaf in jax.tree_util.tree_leaves(position):
        if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != num:
            raise ValueError(
                f"a parallel-tempering position holds one configuration per temperature: a "
                f"leading axis of size {num}; got shape {jnp.shape(leaf)}. Replicate a start "
                f"with jnp.broadcast_to(x[None], ({num},) + x.shape) (for sample_chains: x0 of "
                f"shape (num_chains, {num}, ...))."
            )


def _pt_init(
    position: Any, params: Any, *, algs: tuple[SamplingAlgorithm, ...], energy_fn: Any
) -> TemperingState:
    num = len(algs)
    _check_replicas(position, num)
    batched = _batched([a.init for a in algs])
    if batched is not None:
        fn, shared, name, values = batched
        extra = (jnp.asarray(values),) if name else ()

        def one(x: Any, *value: Any) -> Any:
            kw = {name: value[0]} if name else {}
            return fn(x, params, **shared, **kw)

        in_axes = (0,) + (0,) * len(extra)
        stacked = jax.vmap(one, in_axes=in_axes)(position, *extra)
        if energy_fn is None and not hasattr(stacked, "energy"):
            raise TypeError(
                "the replicas' States have no `energy` field; pass `energy_fn` to "
                "parallel_tempering so the exchanges can compute E(x)."
            )
        return TemperingState(
            stacked.position,
            stacked,
            _energies(stacked, params, energy_fn),
            jnp.arange(num, dtype=jnp.int32),
            jnp.zeros((), jnp.int32),
        )
    states = [alg.init(_index(position, r), params) for r, alg in enumerate(algs)]
    if energy_fn is None and not all(hasattr(s, "energy") for s in states):
        raise TypeError(
            "the replicas' States have no `energy` field; pass `energy_fn` to "
            "parallel_tempering so the exchanges can compute E(x)."
        )
    try:
        stacked = _stack(states)
    except ValueError as err:
        raise TypeError(
            "`make_sampler` must give every temperature a sampler whose State has the same "
            f"structure (so replicas can exchange states): {err}"
        ) from err
    energy = _energies(stacked, params, energy_fn)
    return TemperingState(
        stacked.position,
        stacked,
        energy,
        jnp.arange(num, dtype=jnp.int32),
        jnp.zeros((), jnp.int32),
    )


def _pt_step(
    key: jax.Array,
    state: TemperingState,
    params: Any,
    *,
    algs: tuple[SamplingAlgorithm, ...],
    energy_fn: Any,
    betas: tuple[float, ...],
) -> tuple[TemperingState, TemperingInfo]:
    num = len(algs)
    keys = jax.random.split(key, num + 1)
    batched = _batched([a.step for a in algs])
    if batched is not None:
        fn, shared, name, values = batched

        def one(k: jax.Array, s: Any, *value: Any) -> Any:
            kw = {name: value[0]} if name else {}
            return fn(k, s, params, **shared, **kw)

        extra = (jnp.asarray(values),) if name else ()
        states, infos = jax.vmap(one)(keys[:num], state.replica_states, *extra)
        acc = jnp.asarray(infos.acceptance_rate, jnp.float32)
        replica_diverged = jnp.asarray(infos.diverged)
    else:
        new_states, info_list = [], []
        for r, alg in enumerate(algs):
            s, info = alg.step(keys[r], _index(state.replica_states, r), params)
            new_states.append(s)
            info_list.append(info)
        states = _stack(new_states)
        acc = jnp.stack([jnp.asarray(i.acceptance_rate, jnp.float32) for i in info_list])
        replica_diverged = jnp.stack([jnp.asarray(i.diverged) for i in info_list])
    energy = _energies(states, params, energy_fn)

    # exchanges between (r, r+1) for r ≡ parity (mod 2)
    beta = jnp.asarray(betas, energy.dtype)
    pair = jnp.arange(num - 1)
    attempted = (pair % 2) == state.parity
    log_ratio = (beta[:-1] - beta[1:]) * (energy[:-1] - energy[1:])
    nan = jnp.isnan(log_ratio) & attempted
    log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
    u = jax.random.uniform(keys[num], (num - 1,), energy.dtype)
    accepted = attempted & (jnp.log(u) < log_ratio)
    swap_prob = jnp.where(attempted, jnp.exp(jnp.minimum(log_ratio, 0.0)), 0.0)
    # disjoint pairs: slot r takes r+1 when pair r swaps, r-1 when pair r-1 swaps
    slots = jnp.arange(num)
    up = jnp.concatenate([accepted, jnp.zeros((1,), bool)])
    down = jnp.concatenate([jnp.zeros((1,), bool), accepted])
    perm = jnp.where(up, slots + 1, jnp.where(down, slots - 1, slots))
    states = jax.tree_util.tree_map(lambda a: a[perm], states)
    new = TemperingState(
        states.position, states, energy[perm], state.replica_ids[perm], 1 - state.parity
    )
    info = TemperingInfo(
        acceptance_rate=jnp.mean(acc),
        replica_acceptance_rate=acc,
        swap_attempted=attempted,
        swap_acceptance=swap_prob,
        swap_accepted=accepted,
        diverged=jnp.any(replica_diverged) | jnp.any(nan),
    )
    return new, info


def _check_temperatures(temperatures: Any) -> tuple[float, ...]:
    if isinstance(temperatures, jax.core.Tracer):
        raise TypeError("`temperatures` must be concrete numbers (they build the replicas).")
    temps = np.asarray(temperatures, dtype=np.float64)
    if temps.ndim != 1 or temps.size < 2:
        raise ValueError(
            f"`temperatures` must be a sequence of at least 2 temperatures; got {temperatures!r}."
        )
    if not np.all(np.isfinite(temps)) or np.any(temps <= 0):
        raise ValueError(f"`temperatures` must be finite and > 0; got {temps.tolist()}.")
    if np.any(np.diff(temps) <= 0):
        raise ValueError(
            f"`temperatures` must increase strictly (coldest first); got {temps.tolist()}."
        )
    return tuple(float(t) for t in temps)


def parallel_tempering(
    make_sampler: Callable[..., SamplingAlgorithm],
    *,
    temperatures: Sequence[float],
    energy_fn: EnergyFn | None = None,
) -> SamplingAlgorithm:
    r"""Replica exchange: one sampler per temperature, neighbours swap states.

    See the module docstring for the exchange rule, the even–odd schedule and
    the ladder rule of thumb.

    Args:
      make_sampler: ``make_sampler(temperature=T) -> SamplingAlgorithm``
        targeting ``exp(-E(params, x)/T)``, e.g.
        ``functools.partial(umrf.samplers.gwg, energy_fn)`` or, for a Gibbs
        sampler, ``functools.partial(umrf.samplers.tempered,
        umrf.samplers.gibbs(model), energy_fn)``. Called once per temperature
        when the algorithm is built.
      temperatures: keyword-only increasing temperatures ``T_0 < … < T_{R-1}``
        (see :func:`geometric_temperatures`); replica 0 is the target when
        ``T_0 = 1``.
      energy_fn: keyword-only ``energy_fn(params, x) -> scalar`` on positions,
        for the exchanges; by default the replica states' cached ``energy``.

    Returns:
      ``SamplingAlgorithm(init, step)`` whose position has a leading replica
      axis of size ``R`` (``init`` takes ``(R, ...)``: give each replica a
      start, e.g. ``jnp.broadcast_to(x[None], (R,) + x.shape)``), with
      :class:`TemperingState` and :class:`TemperingInfo`. Under
      :func:`umrf.sample_chains` ``x0`` has shape ``(num_chains, R, ...)`` and
      every chain is an independent set of replicas. Equal
      replica samplers, temperatures and ``energy_fn`` give equal
      algorithms.

    Raises:
      TypeError/ValueError: bad temperatures, ``make_sampler`` not returning a
        ``SamplingAlgorithm``; at ``init``: a position without the replica
        axis, replica states without ``energy`` (and no ``energy_fn``).

    Examples:
      >>> import functools, jax, jax.numpy as jnp, umrf
      >>> m = umrf.models.ising((4, 4), coupling=0.8)
      >>> r = umrf.models.relaxation(m)
      >>> temps = umrf.samplers.geometric_temperatures(4.0, 4)
      >>> alg = umrf.samplers.parallel_tempering(
      ...     functools.partial(umrf.samplers.gwg, r.energy_fn), temperatures=temps)
      >>> x0 = jnp.ones((8, 4, 4, 4), jnp.int8)            # (chains, replicas, 4, 4)
      >>> final, trace = umrf.sample_chains(alg, jax.random.key(0), m, x0, num_steps=100)
      >>> trace.position.shape, umrf.samplers.swap_rates(trace.info).shape
      ((100, 8, 4, 4, 4), (3,))

    References:
      Swendsen & Wang (1986); Geyer (1991); Hukushima & Nemoto (1996);
      Syed et al., JRSS-B 84 (2022).
    """
    check_callable("make_sampler", make_sampler, "make_sampler(temperature=T) -> SamplingAlgorithm")
    if energy_fn is not None:
        check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    temps = _check_temperatures(temperatures)
    algs = []
    for t in temps:
        alg = make_sampler(temperature=t)
        if not isinstance(alg, SamplingAlgorithm):
            raise TypeError(
                "`make_sampler(temperature=T)` must return a umrf.samplers.SamplingAlgorithm; got "
                f"{type(alg).__name__}."
            )
        algs.append(alg)
    algs_t = tuple(algs)
    betas = tuple(1.0 / t for t in temps)
    return SamplingAlgorithm(
        init=bind(_pt_init, algs=algs_t, energy_fn=energy_fn),
        step=bind(_pt_step, algs=algs_t, energy_fn=energy_fn, betas=betas),
    )


def geometric_temperatures(
    max_temperature: float, num_temperatures: int, min_temperature: float = 1.0
) -> tuple[float, ...]:
    """A geometric ladder ``T_r = T_min (T_max/T_min)^{r/(R-1)}``, ``r = 0..R-1``.

    Constant ratios ``T_{r+1}/T_r`` keep neighbouring swap rates roughly equal
    when the heat capacity varies slowly (Kofke 2002); see the module
    docstring of ``umrf.samplers._tempering`` for choosing ``R`` and ``T_max``.

    Args:
      max_temperature: ``T_max > min_temperature``.
      num_temperatures: ``R >= 2``.
      min_temperature: ``T_min > 0`` (1, the target, by default).

    Returns:
      A tuple of ``R`` increasing floats from ``T_min`` to ``T_max``.

    Examples:
      >>> import umrf
      >>> [round(t, 3) for t in umrf.samplers.geometric_temperatures(8.0, 4)]
      [1.0, 2.0, 4.0, 8.0]
    """
    t_max = static_positive_scalar("max_temperature", max_temperature)
    t_min = static_positive_scalar("min_temperature", min_temperature)
    if isinstance(num_temperatures, bool) or not isinstance(num_temperatures, int | np.integer):
        raise TypeError(f"`num_temperatures` must be an int; got {num_temperatures!r}.")
    if num_temperatures < 2:
        raise ValueError(f"`num_temperatures` must be >= 2; got {num_temperatures}.")
    if not t_max > t_min:
        raise ValueError(f"`max_temperature` ({t_max}) must exceed `min_temperature` ({t_min}).")
    r = np.arange(num_temperatures) / (num_temperatures - 1)
    temps = t_min * (t_max / t_min) ** r
    temps[0], temps[-1] = t_min, t_max
    return tuple(float(t) for t in temps)


def swap_rates(info: TemperingInfo) -> jax.Array:
    """Per-pair exchange acceptance rates from a trace: accepted / attempted, shape ``(R-1,)``.

    Averages over every leading axis of the Info (steps, chains). A pair never
    attempted gives NaN.
    """
    if not isinstance(info, TemperingInfo):
        raise TypeError(f"`info` must be a TemperingInfo; got {type(info).__name__}.")
    axes = tuple(range(info.swap_accepted.ndim - 1))
    acc = jnp.sum(info.swap_accepted.astype(jnp.float32), axis=axes)
    att = jnp.sum(info.swap_attempted.astype(jnp.float32), axis=axes)
    return acc / att


# --------------------------------------------------------------------------- tempered()


class TemperedState(NamedTuple):
    """State of a :func:`tempered` sampler.

    Attributes:
      position: the current configuration.
      energy: ``E(params, position)`` at the untempered params.
    """

    position: Any
    energy: jax.Array


def _scale(params: Any, beta: float) -> Any:
    return jax.tree_util.tree_map(lambda a: a * jnp.asarray(beta, jnp.result_type(a)), params)


def _tempered_init(
    position: Any, params: Any, *, alg: SamplingAlgorithm, energy_fn: EnergyFn, beta: float
) -> TemperedState:
    inner = alg.init(position, _scale(params, beta))
    return TemperedState(inner.position, energy_fn(params, inner.position))


def _tempered_step(
    key: jax.Array,
    state: TemperedState,
    params: Any,
    *,
    alg: SamplingAlgorithm,
    energy_fn: EnergyFn,
    beta: float,
) -> tuple[TemperedState, Any]:
    scaled = _scale(params, beta)
    inner, info = alg.step(key, alg.init(state.position, scaled), scaled)
    return TemperedState(inner.position, energy_fn(params, inner.position)), info


def tempered(
    alg: SamplingAlgorithm, energy_fn: EnergyFn, *, temperature: float
) -> SamplingAlgorithm:
    r"""Run ``alg`` at temperature ``T`` by dividing every parameter by ``T``.

    For a model whose energy is linear in its parameters — a
    :class:`~umrf.models.DiscreteMRF` (log-potentials), an Ising or Potts
    lattice (coupling and field) — ``E_{θ/T}(x) = E_θ(x)/T``, so ``alg`` run on
    ``θ/T`` targets ``exp(-E_θ(x)/T)``. This gives the Gibbs samplers the
    temperature :func:`parallel_tempering` needs. NOT valid for models whose
    energy is not linear in ``θ`` (an RBM's free energy, neural energies).

    The inner state is rebuilt from the position at every step (so a state
    handed over by an exchange is never stale); the state stores
    ``E_θ(position)`` at the untempered params.

    Args:
      alg: a sampler of the model, e.g. ``umrf.samplers.gibbs(model)``.
      energy_fn: ``energy_fn(params, x) -> scalar``, the untempered energy on
        positions (e.g. a module-level ``def energy(m, x): return m.energy(x)``).
      temperature: keyword-only ``T > 0``.

    Returns:
      ``SamplingAlgorithm`` with :class:`TemperedState` and ``alg``'s Info.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> m = umrf.models.ising((4, 4), coupling=0.5)
      >>> def energy(model, x):
      ...     return model.energy(x)
      >>> hot = umrf.samplers.tempered(umrf.samplers.gibbs(m), energy, temperature=2.0)
      >>> state = hot.init(jnp.ones((4, 4), jnp.int8), m)
      >>> float(state.energy), hot == umrf.samplers.tempered(umrf.samplers.gibbs(m), energy,
      ...                                                    temperature=2.0)
      (-16.0, True)
    """
    if not isinstance(alg, SamplingAlgorithm):
        raise TypeError(f"`alg` must be a SamplingAlgorithm; got {type(alg).__name__}.")
    check_callable("energy_fn", energy_fn, "energy_fn(params, x) -> scalar")
    t = static_positive_scalar("temperature", temperature)
    beta = 1.0 / t
    return SamplingAlgorithm(
        init=bind(_tempered_init, alg=alg, energy_fn=energy_fn, beta=beta),
        step=bind(_tempered_step, alg=alg, energy_fn=energy_fn, beta=beta),
    )
