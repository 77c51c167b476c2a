"""Gibbs cases: checkerboard Gibbs on the 2-D Ising model at β = 0.4407, umrf vs thrml.

Every row runs full sweeps (black then white sites) of the periodic lattice
``p(s) ∝ exp(β Σ_<ij> s_i s_j)`` from the same random start, all chains in one
jitted program; figures are spin updates per second (chains × sites × sweeps
/ run time). Rows:

* ``umrf Gibbs``: ``umrf.samplers.gibbs(umrf.models.ising(...))`` under
  ``umrf.sample_chains`` (int8 lattice, 16 random bits per spin update with
  an exact lazy 32-bit refinement, both Threefry output words);
* ``umrf Gibbs, rebuilt every call``: the model and the sampler are rebuilt
  from scratch inside every timed call. umrf's samplers are value-equal, so
  this reuses the compiled program (``compile s`` 0, no compilation) and
  costs the same as reusing the sampler: the proof, in the benchmark;
* ``thrml``: ``IsingEBM`` + ``IsingSamplingProgram`` with two checkerboard
  blocks, ``jax.vmap`` over chains of ``thrml.sample_states`` (one
  float32 ``bernoulli`` per spin);
* ``ceiling: the sweep's random bits only``: the same per-chain key schedule
  drawing the random words one umrf sweep consumes (``n/2`` words for ``n``
  sites from Threefry-2x32 in counter mode, both output words:
  ``jax.extend.random.threefry_2x32``) and folding them into the lattice;
* ``local fields only``: both colour updates with neighbour sums and a
  deterministic threshold, no random numbers: the arithmetic of a sweep.

The energy per site after the run is printed as a sanity check (all
samplers target the same distribution; at β_c it is ≈ −1.42 per site at
equilibrium for a large lattice, reached only after many sweeps).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.extend.random
import jax.numpy as jnp

from umrf.bench._core import Case, Config, Job, Workload
from umrf.bench._loops import per_chain_loop

__all__ = ["BETA", "GIBBS_CASES", "ising_workload"]

BETA = 0.4407
LABEL_CEILING = "ceiling: the sweep's random bits only"
LABEL_FIELDS = "local fields only: no random numbers"


def _initial_spins(chains: int, side: int) -> jax.Array:
    up = jax.random.bernoulli(jax.random.key(1), 0.5, (chains, side, side))
    return jnp.where(up, 1, -1).astype(jnp.int8)


def _thrml_job(side: int, chains: int, sweeps: int) -> Job:
    import thrml
    from thrml.models import IsingEBM, IsingSamplingProgram

    nodes = [thrml.SpinNode() for _ in range(side * side)]
    edges = []
    for r in range(side):
        for c in range(side):
            i = r * side + c
            edges.append((nodes[i], nodes[r * side + (c + 1) % side]))
            edges.append((nodes[i], nodes[((r + 1) % side) * side + c]))
    model = IsingEBM(nodes, edges, jnp.zeros(len(nodes)), jnp.ones(len(edges)), jnp.asarray(BETA))
    black = [nodes[r * side + c] for r in range(side) for c in range(side) if (r + c) % 2 == 0]
    white = [nodes[r * side + c] for r in range(side) for c in range(side) if (r + c) % 2 == 1]
    program = IsingSamplingProgram(model, [thrml.Block(black), thrml.Block(white)], [])
    schedule = thrml.SamplingSchedule(n_warmup=sweeps - 1, n_samples=1, steps_per_sample=1)
    init = [
        jax.random.bernoulli(jax.random.key(1), 0.5, (chains, len(black))),
        jax.random.bernoulli(jax.random.key(2), 0.5, (chains, len(white))),
    ]
    everything = [thrml.Block(nodes)]

    def one(key: jax.Array, state: Any) -> Any:
        return thrml.sample_states(key, program, schedule, state, [], everything)[0]

    @jax.jit
    def batched(keys: jax.Array) -> jax.Array:
        samples = jax.vmap(one)(keys, init)  # (chains, 1, n) bool
        return jnp.where(samples[:, -1], 1, -1).astype(jnp.int8).reshape(chains, side, side)

    def run(key: jax.Array) -> jax.Array:
        return batched(jax.random.split(key, chains))

    return Job("thrml", "peer", run, note="IsingEBM, vmap of sample_states", library="thrml")


def _colour_masks(side: int) -> tuple[jax.Array, jax.Array]:
    r, c = jnp.meshgrid(jnp.arange(side), jnp.arange(side), indexing="ij")
    black = (r + c) % 2 == 0
    return black, ~black


def _reference_jobs(side: int, chains: int, sweeps: int, x0: jax.Array) -> list[Job]:
    n = side * side
    words = n // 2  # 16 bits per site, as in umrf's sweep

    def noise_sweep(key: jax.Array, s: jax.Array) -> jax.Array:
        bits = jax.extend.random.threefry_2x32(
            jax.random.key_data(key), jax.lax.iota(jnp.uint32, words)
        )
        a16 = jax.lax.bitcast_convert_type(bits, jnp.uint16).reshape(side, side)
        return jnp.where(a16 < 32768, s, -s)

    noise = per_chain_loop(noise_sweep, lambda s: s, chains, sweeps)
    masks = [m.reshape(n) for m in _colour_masks(side)]
    col = jnp.arange(n) % side

    def fields_sweep(s: jax.Array) -> jax.Array:
        # umrf's layout: the flat lattice, neighbours as shifts (a 2-D jnp.roll of a batch of
        # 64x64 int8 lattices compiles to code 25x slower on XLA's CPU backend).
        for mask in masks:
            left = jnp.where(col == 0, jnp.roll(s, 1 - side), jnp.roll(s, 1))
            right = jnp.where(col == side - 1, jnp.roll(s, side - 1), jnp.roll(s, -1))
            nb = jnp.roll(s, side) + jnp.roll(s, -side) + left + right
            new = jnp.where(BETA * nb.astype(jnp.float32) >= 0, jnp.int8(1), jnp.int8(-1))
            s = jnp.where(mask, new, s)
        return s

    @jax.jit
    def fields_only(x: jax.Array) -> jax.Array:
        flat = x.reshape(chains, n)
        flat = jax.lax.fori_loop(0, sweeps, lambda t, f: jax.vmap(fields_sweep)(f), flat)
        return flat.reshape(x.shape)

    return [
        Job(
            LABEL_CEILING,
            "ceiling",
            lambda key: noise(key, x0),
            note="per-chain keys, n/2 Threefry words per sweep",
        ),
        Job(
            LABEL_FIELDS,
            "bound",
            lambda key: fields_only(x0),
            note="neighbour sums + threshold",
        ),
    ]


def ising_workload(side: int, default_chains: int, config: Config) -> Workload:
    """The rows of one Ising lattice (see the module docstring)."""
    import umrf

    chains, sweeps = config.pick(default_chains, 200, 8, 10)
    if config.quick:
        side = min(side, 32)
    model = umrf.models.ising((side, side), coupling=BETA)
    alg = umrf.samplers.gibbs(model)
    x0 = _initial_spins(chains, side)

    def reuse(key: jax.Array) -> jax.Array:
        final, _ = umrf.sample_chains(alg, key, model, x0, num_steps=sweeps, thin=sweeps)
        return final.position

    def rebuilt(key: jax.Array) -> jax.Array:
        fresh = umrf.models.ising((side, side), coupling=BETA)
        sampler = umrf.samplers.gibbs(fresh)
        final, _ = umrf.sample_chains(sampler, key, fresh, x0, num_steps=sweeps, thin=sweeps)
        return final.position

    jobs = [
        Job("umrf Gibbs", "umrf", reuse, compare_to="thrml"),
        Job(
            "umrf Gibbs, rebuilt every call",
            "umrf",
            rebuilt,
            compare_to="thrml",
            note="gibbs(ising(...)) built inside every call",
        ),
    ]
    missing = []
    try:
        jobs.append(_thrml_job(side, chains, sweeps))
    except ImportError:
        missing.append("thrml")
    jobs += _reference_jobs(side, chains, sweeps, x0)

    def check(label: str, out: Any) -> str:
        if label.startswith(("ceiling", "local")):
            return ""
        energy = jnp.mean(jax.vmap(model.energy)(out)) / (side * side)
        return f"energy/site = {float(energy):.4f}"

    title = f"Ising {side}×{side}, β = {BETA}, periodic: {chains} chains × {sweeps} sweeps"
    bound = ("umrf Gibbs", LABEL_CEILING, LABEL_FIELDS)
    work = chains * side * side * sweeps
    return Workload(title, "spin updates/s", work, jobs, missing, check, bound)


GIBBS_CASES = (
    Case(
        "gibbs/ising64",
        lambda config: ising_workload(64, 64, config),
        "checkerboard Gibbs on a 64×64 Ising lattice (32×32 with --quick)",
    ),
    Case(
        "gibbs/ising128",
        lambda config: ising_workload(128, 16, config),
        "checkerboard Gibbs on a 128×128 Ising lattice",
        quick=False,
    ),
)
