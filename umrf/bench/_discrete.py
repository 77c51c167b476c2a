"""Discrete gradient-based samplers: GWG, DULA and DMALA on an Ising lattice.

The target is the periodic 2-D Ising model at β = 0.4407 in its binary
relaxation (``umrf.models.relaxation``: states ``x = (s + 1) / 2``, the
energy differentiable in ``x``); ``chains`` chains × ``steps`` steps from
the same random start; chain-steps per second. Rows:

* ``umrf GWG``: Gibbs-with-Gradients, one single-site MH move per step;
* ``umrf DULA`` / ``umrf DMALA``: every site redrawn from the discrete
  Langevin proposal (step size 0.2), without / with the MH correction;
* ``ceiling: n uniforms per step (per-chain keys)``: the random numbers a
  step of these samplers draws at least (one uniform per site: DULA's coin
  flips, GWG's Gumbel-max over the ``n`` moves), folded into the state;
* ``gradient only``: the gradient of the relaxed energy for every chain, no
  keys: the one gradient evaluation each of these steps makes.

No peer library samples these (blackjax has no discrete-gradient samplers);
a GWG step changes at most one site while a DULA/DMALA step may change all,
so compare them per unit of mixing, not per step, when choosing one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from umrf.bench._core import Case, Config, Job, Workload
from umrf.bench._gibbs import BETA
from umrf.bench._loops import per_chain_loop

__all__ = ["DISCRETE_CASES", "discrete_workload"]

DLP_STEP_SIZE = 0.2


def discrete_workload(side: int, config: Config) -> Workload:
    """The rows of the discrete-gradient samplers on a ``side × side`` Ising lattice."""
    import umrf

    chains, steps = config.pick(256, 1000, 64, 20)
    if config.quick:
        side = min(side, 16)
    model = umrf.models.ising((side, side), coupling=BETA)
    relaxed = umrf.models.relaxation(model)
    energy, cats = relaxed.energy_fn, relaxed.num_categories
    up = jax.random.bernoulli(jax.random.key(1), 0.5, (chains, side, side))
    x0 = up.astype(jnp.int8)

    def umrf_run(alg: Any):
        def run(key: jax.Array) -> jax.Array:
            final, _ = umrf.sample_chains(alg, key, model, x0, num_steps=steps, thin=steps)
            return final.position

        return run

    def noise_step(key: jax.Array, x: jax.Array) -> jax.Array:
        flip = jax.random.uniform(key, x.shape) < 0.5
        return jnp.where(flip, 1 - x, x)

    noise = per_chain_loop(noise_step, lambda x: x, chains, steps)
    grad = jax.vmap(jax.grad(lambda x: energy(model, x)))

    @jax.jit
    def gradient_only(x: jax.Array) -> jax.Array:
        return jax.lax.fori_loop(0, steps, lambda t, x: x - 0.01 * grad(x), x)

    x0_float = x0.astype(jnp.float32)
    jobs = [
        Job("umrf GWG", "umrf", umrf_run(umrf.samplers.gwg(energy, num_categories=cats))),
        Job(
            "umrf DULA",
            "umrf",
            umrf_run(umrf.samplers.dula(energy, step_size=DLP_STEP_SIZE, num_categories=cats)),
            note=f"step size {DLP_STEP_SIZE}",
        ),
        Job(
            "umrf DMALA",
            "umrf",
            umrf_run(umrf.samplers.dmala(energy, step_size=DLP_STEP_SIZE, num_categories=cats)),
            note=f"step size {DLP_STEP_SIZE}",
        ),
        Job(
            "ceiling: n uniforms per step (per-chain keys)",
            "ceiling",
            lambda key: noise(key, x0),
            note="like-for-like RNG",
        ),
        Job(
            "gradient only: ∇E of the relaxation, no keys",
            "bound",
            lambda key: gradient_only(x0_float),
            note="the target's cost",
        ),
    ]

    def check(label: str, out: Any) -> str:
        if not label.startswith("umrf"):
            return ""
        spins = (2 * out.astype(jnp.int32) - 1).astype(jnp.int8)
        return f"energy/site = {float(jnp.mean(jax.vmap(model.energy)(spins))) / side**2:.4f}"

    title = f"Ising {side}×{side} (binary relaxation), β = {BETA}: {chains} chains × {steps} steps"
    bound = ("umrf DULA", jobs[3].label, jobs[4].label)
    return Workload(title, "chain-steps/s", chains * steps, jobs, [], check, bound)


DISCRETE_CASES = (
    Case(
        "discrete/ising32",
        lambda config: discrete_workload(32, config),
        "GWG, DULA, DMALA on a 32×32 Ising lattice (binary relaxation)",
        quick=False,
    ),
)
