"""Two real processes on 127.0.0.1 follow the README's multi-host recipe; one process agrees.

The test launches ``tests/multiprocess_worker.py`` twice: a 2-process
``jax.distributed`` job whose processes have 4 CPU devices each (8 global
devices) and talk through jaxlib's gloo collectives on the loopback address.
They run ``chains_mesh(jax.devices())``, ``global_chains``, ``sample_chains(...,
mesh=mesh)`` and ``local_chains`` for MALA (Langevin: float positions) and
checkerboard Gibbs on Ising (discrete states); a data-parallel
``umrf.training.fit``, once straight through and once crashed and resumed
from its checkpoints; and save and restore a ``TrainState`` whose arrays span
both processes.

This process (8 local CPU devices, tests/conftest.py) then computes the
same runs from the same definitions and checks what umrf promises (see
``umrf/samplers/_driver.py``): Gibbs states and accept flags bitwise equal,
Langevin positions and trained parameters equal to float rounding
(``FLOAT_RTOL``/``FLOAT_ATOL``), and it restores the checkpoint the two
processes wrote into one process's layout.

Bounds: the workers have ``TIMEOUT_S`` in all; when one fails the other is
killed at once; both run in their own process group, which is killed and
checked empty at the end, pass or fail.
"""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf import training

WORKER = Path(__file__).with_name("multiprocess_worker.py")
TIMEOUT_S = 240
# Tens of float32 Langevin steps / Adam updates under another reduction order: a few ulps.
FLOAT_RTOL = FLOAT_ATOL = 1e-5


def load_worker():
    spec = importlib.util.spec_from_file_location("umrf_multiprocess_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Workers:
    """The worker processes, started on entry; on exit (pass or fail) none is left running."""

    def __init__(self, out: Path, num_processes: int):
        self.out, self.num_processes = out, num_processes
        self.procs: list[subprocess.Popen] = []
        self.logs: list = []

    def __enter__(self) -> "Workers":
        env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        port = free_port()
        self.deadline = time.monotonic() + TIMEOUT_S
        try:
            for pid in range(self.num_processes):
                self.logs.append(open(self.out / f"worker_{pid}.log", "w"))  # noqa: SIM115
                cmd = [sys.executable, str(WORKER), str(pid), str(port), str(self.out)]
                self.procs.append(
                    subprocess.Popen(
                        cmd, stdout=self.logs[-1], stderr=subprocess.STDOUT, env=env,
                        cwd=self.out, start_new_session=True,
                    )
                )  # fmt: skip
        except BaseException:
            self.__exit__()
            raise
        return self

    def results(self) -> list[dict[str, np.ndarray]]:
        """Wait (bounded) for both; stop at once if one fails, since the other would wait for it."""
        procs = self.procs
        while any(p.poll() is None for p in procs):
            if any(p.poll() not in (None, 0) for p in procs) or time.monotonic() > self.deadline:
                break
            time.sleep(0.2)
        self.__exit__()
        codes = [p.returncode for p in procs]
        if codes != [0] * self.num_processes:
            tails = "\n".join(
                f"--- worker {pid} (exit {code}):\n"
                + (self.out / f"worker_{pid}.log").read_text(errors="replace")[-3000:]
                for pid, code in enumerate(codes)
            )
            pytest.fail(f"workers exited with {codes} (limit {TIMEOUT_S} s):\n{tails}")
        return [dict(np.load(self.out / f"result_{pid}.npz")) for pid in range(len(procs))]

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            if group_alive(p.pid):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        for log in self.logs:
            log.close()
        self.logs = []
        assert not any(group_alive(p.pid) for p in self.procs), "a worker left a process behind"


def rows(pid: int, per: int, axis: int = 0):
    return (slice(None),) * axis + (slice(pid * per, (pid + 1) * per),)


def one_process_references(worker):
    """The same runs in this process (8 local devices), computed while the workers run."""
    mesh = umrf.sharding.chains_mesh()
    assert mesh.shape["chains"] == worker.NUM_PROCESSES * worker.DEVICES_PER_PROCESS
    sampled = {}
    for name, (alg, params, x_all) in worker.sampling_cases().items():
        final, trace = umrf.sample_chains(
            alg,
            jax.random.key(worker.KEY),
            params,
            x_all,
            num_steps=worker.STEPS,
            thin=worker.THIN,
            mesh=mesh,
        )
        want = {"final": np.asarray(final.position), "trace": np.asarray(trace.position)}
        if hasattr(trace.info, "is_accepted"):
            want["accepted"] = np.asarray(trace.info.is_accepted)
        assert not np.array_equal(want["final"], x_all), f"{name} did not move"
        sampled[name] = want
    loss_fn, opt, key, params, data = worker.fit_args()
    fitted = training.fit(
        loss_fn,
        opt,
        key,
        params,
        data,
        num_steps=worker.FIT_STEPS,
        batch_size=worker.FIT_BATCH,
        mesh=jax.sharding.Mesh(np.array(jax.devices()), ("batch",)),
        progress=False,
    )
    return sampled, fitted


def test_two_processes_match_one_process(tmp_path):
    worker = load_worker()
    with Workers(tmp_path, worker.NUM_PROCESSES) as workers:
        sampled, (single, history) = one_process_references(worker)
        results = workers.results()
    per = worker.NUM_CHAINS // worker.NUM_PROCESSES

    # 1. Sampling: the README recipe across processes == one process over 8 devices.
    for name, want in sampled.items():
        for pid, got in enumerate(results):
            for what, full in want.items():
                mine = full[rows(pid, per, axis=0 if what == "final" else 1)]
                theirs = got[f"{name}/{what}"]
                assert theirs.shape == mine.shape and theirs.dtype == mine.dtype, (name, what)
                if name.startswith("lv_") and what != "accepted":
                    np.testing.assert_allclose(
                        theirs, mine, rtol=FLOAT_RTOL, atol=FLOAT_ATOL, err_msg=f"{name}/{what}"
                    )
                else:  # Gibbs states, accept flags: bitwise
                    np.testing.assert_array_equal(theirs, mine, err_msg=f"{name}/{what}")

    # 2. Data-parallel fit: 2 processes == 1 process, to rounding; resume == uninterrupted.
    for got in results:
        for leaf in ("m", "log_prec"):
            np.testing.assert_allclose(
                got[f"fit/{leaf}"], single.params[leaf], rtol=FLOAT_RTOL, atol=FLOAT_ATOL
            )
        np.testing.assert_allclose(got["fit/losses"], history.losses, rtol=FLOAT_RTOL)
        assert bool(got["fit/resumed_equal"])
    assert not np.allclose(np.asarray(single.params["m"]), 0.0)
    kept = sorted(p.name for p in (tmp_path / "fit_checkpoints").iterdir())
    assert kept == ["ckpt_000000008", "ckpt_000000012"]

    # 3. The TrainState saved by 2 processes: each wrote only what it owns ...
    ckpt = tmp_path / "sharded_state"
    manifest = json.loads((ckpt / "manifest.json").read_text())
    assert [f["name"] for f in manifest["files"]] == ["process_00000.npz", "process_00001.npz"]
    owned = []
    for pid in range(worker.NUM_PROCESSES):
        with np.load(ckpt / f"process_{pid:05d}.npz") as f:
            index = json.loads(str(f["__index__"]))
        owned.append({(i, tuple(map(tuple, where))) for i, _, where in index})
    assert not owned[0] & owned[1]  # nothing written twice
    metas = manifest["leaves"]
    sharded = {i for i, m in enumerate(metas) if m["shape"][:1] == [worker.NUM_CHAINS]}
    assert len(sharded) == 2  # extra["chains"], extra["spins"]: split over the processes
    for pid in range(worker.NUM_PROCESSES):
        for i in sharded:  # its own rows of the sharded leaves, and only those
            spans = {where[0] for j, where in owned[pid] if j == i}
            assert spans == {
                (pid * per + k * per // 4, pid * per + (k + 1) * per // 4) for k in range(4)
            }
    replicated = set(range(len(metas))) - sharded
    assert {i for i, _ in owned[0]} - sharded == replicated  # written once, by process 0
    assert {i for i, _ in owned[1]} == sharded

    # ... and one process restores it into its own layout.
    full_blocks = [worker.sharded_state_blocks(pid) for pid in range(worker.NUM_PROCESSES)]
    extra = {k: np.concatenate([b[k] for b in full_blocks]) for k in full_blocks[0]}
    _, opt, _, params, _ = worker.fit_args()
    template = training.init_train_state(
        opt, jax.random.key(0), params, extra=jax.tree_util.tree_map(jnp.zeros_like, extra)
    )
    back = training.load_checkpoint(ckpt, template)
    assert int(back.step) == 5
    for k, v in extra.items():
        np.testing.assert_array_equal(np.asarray(back.extra[k]), v)
    np.testing.assert_array_equal(
        np.asarray(jax.random.key_data(back.key)),
        np.asarray(jax.random.key_data(jax.random.key(3))),
    )
    assert all(bool(got["checkpoint/restored_equal"]) for got in results)
