"""Langevin cases: umrf ULA, MALA and annealed Langevin beside blackjax and two reference loops.

Rows of each target (``chains`` chains × ``steps`` Langevin updates from
``x0 = 0``, step size ``τ = 0.02``; chain-steps per second):

* ``umrf ULA`` / ``umrf MALA``: ``umrf.sample_chains`` (``thin = steps``,
  only the final state kept) with the target closed over, as a peer is used;
* ``umrf MALA, model as traced params``: the target passed as ``params``
  (the EBM-training setting: new parameters never recompile);
* ``umrf annealed Langevin``: ``L`` noise levels ``σ`` geometric from 1 to
  0.1 (``L = 10`` when it divides ``steps``), ``steps / L`` updates each, with
  the exact noised score of the target; its largest step equals ``τ``;
* ``blackjax MALA`` (``blackjax.mala``) and ``blackjax ULA``
  (``blackjax.sgld`` with the exact full gradient: blackjax's overdamped
  Langevin step ``x + τ∇log p + sqrt(2τ) ε``), in the same
  ``scan``/``vmap``/key loop as umrf (:func:`per_chain_loop`);
* ``ceiling: x + noise (per-chain keys)``: the same loop drawing only the
  noise ``x + ε``: the cost of the random numbers every per-chain sampler
  pays (the ``vs ceiling`` reference);
* ``ceiling: one bulk draw``: ``x + normal(fold_in(key, t), (C, d))``, the
  bare floor without per-chain keys;
* ``gradient only``: ``x ← x − τ∇E(x)`` for all chains, no keys or noise: the
  target's own cost. A ULA step draws the noise AND evaluates the gradient,
  and each already uses every core, so ``t_ULA ≥ t_noise + t_gradient`` and
  ``ULA / ceiling ≤ t_noise / (t_noise + t_gradient)`` (the summary's bound).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from umrf.bench._core import Case, Config, Job, Workload
from umrf.bench._loops import per_chain_loop
from umrf.bench._targets import Target, gaussian, isotropic, mixture2d

__all__ = ["LANGEVIN_CASES", "STEP_SIZE"]

STEP_SIZE = 0.02
LABEL_CEILING = "ceiling: x + noise (per-chain keys)"
LABEL_GRADIENT = "gradient only: x - τ∇E(x), no noise"


def _levels(steps: int) -> int:
    return next(L for L in (10, 5, 4, 2, 1) if steps % L == 0)


def _umrf_run(alg: Any, params: Any, x0: jax.Array, steps: int):
    import umrf

    def run(key: jax.Array) -> jax.Array:
        final, _ = umrf.sample_chains(alg, key, params, x0, num_steps=steps, thin=steps)
        return final.position

    return run


def _blackjax_jobs(target: Target, chains: int, steps: int, x0: jax.Array) -> list[Job]:
    import blackjax

    params = target.params

    def logdensity(x: jax.Array) -> jax.Array:
        return -target.energy(params, x)

    mala = blackjax.mala(logdensity, step_size=STEP_SIZE)
    run_mala = per_chain_loop(lambda k, s: mala.step(k, s)[0], mala.init, chains, steps)
    grad = jax.grad(logdensity)
    sgld = blackjax.sgld(lambda x, batch: grad(x))
    run_ula = per_chain_loop(
        lambda k, x: sgld.step(k, x, None, STEP_SIZE), lambda x: x, chains, steps
    )
    return [
        Job(
            "blackjax MALA",
            "peer",
            lambda key: run_mala(key, x0).position,
            note="blackjax.mala",
            library="blackjax",
        ),
        Job(
            "blackjax ULA",
            "peer",
            lambda key: run_ula(key, x0),
            note="blackjax.sgld, exact full gradient",
            library="blackjax",
        ),
    ]


def _reference_jobs(target: Target, chains: int, steps: int, x0: jax.Array) -> list[Job]:
    noise = per_chain_loop(
        lambda k, x: x + jax.random.normal(k, x.shape, x.dtype), lambda x: x, chains, steps
    )

    @jax.jit
    def bulk(key: jax.Array, x: jax.Array) -> jax.Array:
        def body(x: jax.Array, t: jax.Array) -> tuple[jax.Array, None]:
            return x + jax.random.normal(jax.random.fold_in(key, t), x.shape, x.dtype), None

        return jax.lax.scan(body, x, jnp.arange(steps))[0]

    params = target.params
    grad = jax.vmap(jax.grad(lambda x: target.energy(params, x)))

    @jax.jit
    def gradient_only(x: jax.Array) -> jax.Array:
        return jax.lax.fori_loop(0, steps, lambda t, x: x - STEP_SIZE * grad(x), x)

    return [
        Job(LABEL_CEILING, "ceiling", lambda key: noise(key, x0), note="like-for-like RNG"),
        Job("ceiling: one bulk draw", "bound", lambda key: bulk(key, x0), note="hardware floor"),
        Job(LABEL_GRADIENT, "bound", lambda key: gradient_only(x0), note="the target's cost"),
    ]


def langevin_workload(target: Target, config: Config) -> Workload:
    """The rows of one Langevin target (see the module docstring)."""
    import umrf

    chains, steps = config.pick(4096, 1000, 256, 20)
    x0 = jnp.zeros((chains, target.dim), jnp.float32)
    params = target.params

    def fixed(_: Any, x: jax.Array) -> jax.Array:
        return target.energy(params, x)

    levels = _levels(steps)
    sigmas = np.geomspace(1.0, 0.1, levels).tolist() if levels > 1 else [0.1]
    eps = 2 * STEP_SIZE * (sigmas[-1] / sigmas[0]) ** 2  # the largest update's step is τ
    annealed = umrf.samplers.annealed_langevin(
        lambda _, x, sigma: target.score(x, sigma),
        sigmas=sigmas,
        steps_per_level=steps // levels,
        eps=eps,
    )
    jobs = [
        Job(
            "umrf ULA",
            "umrf",
            _umrf_run(umrf.samplers.ula(fixed, step_size=STEP_SIZE), None, x0, steps),
            compare_to="blackjax ULA",
        ),
        Job(
            "umrf MALA",
            "umrf",
            _umrf_run(umrf.samplers.mala(fixed, step_size=STEP_SIZE), None, x0, steps),
            compare_to="blackjax MALA",
        ),
        Job(
            "umrf MALA, model as traced params",
            "umrf",
            _umrf_run(umrf.samplers.mala(target.energy, step_size=STEP_SIZE), params, x0, steps),
            compare_to="blackjax MALA",
            note="training-loop setting: new params, no recompile",
        ),
        Job(
            "umrf annealed Langevin",
            "umrf",
            _umrf_run(annealed, None, x0, 1),
            note=f"{levels} levels × {steps // levels} steps, exact noised score",
        ),
    ]
    missing = []
    try:
        jobs += _blackjax_jobs(target, chains, steps, x0)
    except ImportError:
        missing.append("blackjax")
    jobs += _reference_jobs(target, chains, steps, x0)

    def check(label: str, out: Any) -> str:
        if not label.startswith(("umrf", "blackjax")):
            return ""
        return f"mean E = {float(jnp.mean(jax.vmap(fixed, (None, 0))(None, out))):.3g}"

    title = (
        f"{target.description}: {chains} chains × {steps} steps, d = {target.dim}, τ = {STEP_SIZE}"
    )
    bound = ("umrf ULA", LABEL_CEILING, LABEL_GRADIENT)
    return Workload(title, "chain-steps/s", chains * steps, jobs, missing, check, bound)


LANGEVIN_CASES = (
    Case(
        "langevin/mixture2d",
        lambda config: langevin_workload(mixture2d(), config),
        "ULA, MALA, annealed Langevin on the 2-D mixture of 8 Gaussians",
    ),
    Case(
        "langevin/gaussian",
        lambda config: langevin_workload(gaussian(config.dim), config),
        "ULA, MALA, annealed Langevin on a dense --dim-D Gaussian",
    ),
    Case(
        "langevin/isotropic",
        lambda config: langevin_workload(isotropic(config.dim), config),
        "ULA, MALA, annealed Langevin on ½‖x‖² (the samplers' own overhead)",
        quick=False,
    ),
)
