"""One process of the two-process run of tests/test_multiprocess.py (launched by that test).

``python tests/multiprocess_worker.py PROCESS_ID PORT OUT_DIR`` joins a
2-process ``jax.distributed`` job on ``127.0.0.1:PORT`` with 4 CPU devices of
its own (coordinator and gloo collectives on the loopback address only), then follows the
README's multi-host recipe word for word and writes what it sees to
``OUT_DIR/result_<PROCESS_ID>.npz``. The cases (targets, samplers, keys,
initial positions, the training loss) are module-level functions, so the test
computes its single-process references from the very same definitions.
Importing this module has no side effects (the test suite imports every
module under ``tests/`` for doctests).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

NUM_PROCESSES = 2
DEVICES_PER_PROCESS = 4
NUM_CHAINS = 32
KEY = 42
STEPS, THIN = 12, 3
FIT_STEPS, FIT_BATCH, CRASH_AT, CHECKPOINT_EVERY = 12, 64, 6, 4


# --------------------------------------------------------------------------- the cases


def gaussian():
    import umrf

    cov = jnp.array([[1.0, 0.6, 0.0], [0.6, 2.0, 0.3], [0.0, 0.3, 0.5]])
    return umrf.models.Gaussian.from_covariance(jnp.array([1.0, -1.0, 0.0]), cov)


def energy(model, x):
    return model.energy(x)


def sampling_cases():
    """``name -> (alg, params, x0 of ALL chains as numpy)``; Langevin names start with "lv_"."""
    import umrf

    model = gaussian()
    x_float = np.asarray(jax.random.normal(jax.random.key(0), (NUM_CHAINS, 3)), np.float32)
    ising = umrf.models.ising((6, 6), 0.4, 0.1)
    spins = jax.random.bernoulli(jax.random.key(1), 0.5, (NUM_CHAINS, 6, 6))
    x_spins = np.where(np.asarray(spins), 1, -1).astype(np.int8)
    return {
        "lv_mala": (umrf.samplers.mala(energy, step_size=0.3), model, x_float),
        "gibbs_ising": (umrf.samplers.gibbs(ising), ising, x_spins),
    }


def fit_data():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.normal(size=(256, 3)) * 0.5 + np.array([1.0, -1.0, 0.5]), jnp.float32)


def quadratic(p, x):
    return 0.5 * jnp.exp(p["log_prec"]) * jnp.sum((x - p["m"]) ** 2)


def dsm_loss(key, params, batch, extra):
    import umrf

    loss = umrf.losses.denoising_score_matching(
        umrf.score(quadratic), key, params, batch, sigma=0.5
    )
    return loss, extra


def fit_args():
    """``(loss_fn, optimizer, key, params, data)`` of the data-parallel training run."""
    params = {"m": jnp.zeros(3), "log_prec": jnp.zeros(())}
    return dsm_loss, OPTIMIZER, jax.random.key(7), params, fit_data()


def sharded_state_blocks(process_id: int):
    """This process's rows of the chain-sharded ``extra`` of the checkpointed TrainState."""
    rows = NUM_CHAINS // NUM_PROCESSES
    start = process_id * rows
    floats = np.arange(NUM_CHAINS * 3, dtype=np.float32).reshape(NUM_CHAINS, 3)[start:][:rows]
    spins = (np.arange(NUM_CHAINS * 4) % 3 - 1).astype(np.int8).reshape(NUM_CHAINS, 4)
    return {"chains": floats * 0.5, "spins": spins[start : start + rows]}


OPTIMIZER = optax.adam(5e-2)


# --------------------------------------------------------------------------- the run


def _gloo_on_loopback() -> None:
    """Bind gloo to 127.0.0.1 (by default it binds to whatever the hostname resolves to)."""
    from jax._src import xla_bridge

    make = xla_bridge._jax.make_gloo_tcp_collectives

    def loopback(distributed_client, hostname=None, interface=None):
        return make(distributed_client=distributed_client, hostname="127.0.0.1")

    xla_bridge._jax.make_gloo_tcp_collectives = loopback


def main(process_id: int, port: int, out: Path) -> None:
    t0 = time.perf_counter()

    def log(what: str) -> None:
        print(f"process {process_id}: {what} at {time.perf_counter() - t0:.1f} s", flush=True)

    jax.config.update("jax_num_cpu_devices", DEVICES_PER_PROCESS)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    _gloo_on_loopback()
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        coordinator_bind_address=f"127.0.0.1:{port}",  # listen on the loopback only
        num_processes=NUM_PROCESSES,
        process_id=process_id,
        initialization_timeout=60,
    )
    import umrf
    from umrf import training

    assert jax.process_count() == NUM_PROCESSES
    assert len(jax.devices()) == NUM_PROCESSES * DEVICES_PER_PROCESS
    result: dict[str, np.ndarray] = {}
    log("initialized")

    # The README recipe, word for word.
    mesh = umrf.sharding.chains_mesh(jax.devices())
    rows = NUM_CHAINS // jax.process_count()
    for name, (alg, params, x_all) in sampling_cases().items():
        local_x0 = x_all[process_id * rows : (process_id + 1) * rows]
        x0 = umrf.sharding.global_chains(local_x0, mesh)
        final, trace = umrf.sample_chains(
            alg, jax.random.key(KEY), params, x0, num_steps=STEPS, thin=THIN, mesh=mesh
        )
        assert not trace.position.is_fully_addressable  # really one array over both processes
        result[f"{name}/final"] = umrf.sharding.local_chains(final.position)
        result[f"{name}/trace"] = umrf.sharding.local_chains(trace.position)
        if hasattr(trace.info, "is_accepted"):
            result[f"{name}/accepted"] = umrf.sharding.local_chains(trace.info.is_accepted)
        log(name)

    # Data-parallel fit over both processes; then crash at CRASH_AT and resume.
    batch_mesh = jax.sharding.Mesh(np.array(jax.devices()), ("batch",))
    loss_fn, opt, key, params, data = fit_args()
    kw = dict(num_steps=FIT_STEPS, batch_size=FIT_BATCH, mesh=batch_mesh, progress=False)
    full, history = training.fit(loss_fn, opt, key, params, data, **kw)
    result["fit/m"] = np.asarray(full.params["m"])
    result["fit/log_prec"] = np.asarray(full.params["log_prec"])
    result["fit/losses"] = np.asarray(history.losses)
    log("fit")

    def crash(state):
        if int(state.step) == CRASH_AT:
            raise KeyboardInterrupt  # as if the job were stopped
        return {}

    ckpt_dir = out / "fit_checkpoints"
    try:
        training.fit(
            loss_fn, opt, key, params, data, eval_fn=crash, eval_every=1,
            checkpoint_dir=ckpt_dir, checkpoint_every=CHECKPOINT_EVERY, **kw,
        )  # fmt: skip
        raise AssertionError("the crashing run did not crash")
    except KeyboardInterrupt:
        pass
    resumed, hist = training.fit(
        loss_fn, opt, key, params, data, checkpoint_dir=ckpt_dir,
        checkpoint_every=CHECKPOINT_EVERY, **kw,
    )  # fmt: skip
    assert hist.resumed_from == CHECKPOINT_EVERY, hist.resumed_from
    for a, b in zip(
        jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed), strict=True
    ):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        # the same compiled programs on the same layout: equal bit for bit
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    result["fit/resumed_equal"] = np.array(True)
    log("fit crashed and resumed")

    # A TrainState whose arrays span both processes: save, then restore into a template.
    blocks = sharded_state_blocks(process_id)
    state = training.init_train_state(
        opt, jax.random.key(3), params, extra=umrf.sharding.global_chains(blocks, mesh)
    )
    state = state._replace(
        step=umrf.sharding.replicate(jnp.int32(5), mesh),
        params=umrf.sharding.replicate(state.params, mesh),
        opt_state=umrf.sharding.replicate(state.opt_state, mesh),
        key=umrf.sharding.replicate(state.key, mesh),
    )
    path = training.save_checkpoint(out / "sharded_state", state)
    zeros = {k: np.zeros_like(v) for k, v in blocks.items()}
    template = state._replace(
        extra=umrf.sharding.global_chains(zeros, mesh),
        key=umrf.sharding.replicate(jax.random.key(0), mesh),
    )
    back = training.load_checkpoint(path, template)
    assert back.extra["chains"].sharding == state.extra["chains"].sharding
    for name, block in blocks.items():
        np.testing.assert_array_equal(umrf.sharding.local_chains(back.extra[name]), block)
    np.testing.assert_array_equal(
        np.asarray(jax.random.key_data(back.key)), np.asarray(jax.random.key_data(state.key))
    )
    result["checkpoint/restored_equal"] = np.array(int(back.step) == 5)

    np.savez(out / f"result_{process_id}.npz", **result)
    jax.distributed.shutdown()
    log("done")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
