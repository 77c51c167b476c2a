"""Checkpoints: damage is reported (naming the file), crashes never commit, nothing is overwritten.

The multi-process side (each process writes the shards it owns, N processes
save and one restores, a resumed 2-process ``fit``) is in
tests/test_multiprocess.py; the bit-for-bit resume of ``fit`` and the
bfloat16 / PRNG key / ``None`` round trip are in tests/test_training.py.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import umrf
from umrf import training
from umrf.training import CheckpointError


def state():
    params = {"w": jnp.arange(12.0).reshape(3, 4), "b": jnp.ones(4, jnp.bfloat16)}
    return training.init_train_state(
        optax.adam(1e-3),
        jax.random.key(5),
        params,
        extra={"chains": jnp.arange(40, dtype=jnp.int8)},
    )


def template():
    return jax.tree_util.tree_map(
        lambda x: x if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else jnp.zeros_like(x), state()
    )


def assert_same(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture
def saved(tmp_path):
    return training.save_checkpoint(tmp_path / "ckpt_000000003", state())


def test_round_trip_and_layout(saved):
    assert sorted(p.name for p in saved.iterdir()) == ["manifest.json", "process_00000.npz"]
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["format"] == "umrf-checkpoint-v2" and manifest["step"] == 0
    assert_same(training.load_checkpoint(saved, template()), state())
    assert training.latest_checkpoint(saved.parent) == saved


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2]
    elif how == "flip":  # one bit in the middle of the array data
        data[len(data) // 2] ^= 0x04
    elif how == "empty":
        data = bytearray()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncate", "flip", "empty", "delete"])
@pytest.mark.parametrize("which", ["process_00000.npz", "manifest.json"])
def test_damaged_file_is_named_never_restored(saved, which, how):
    target = saved / which
    if how == "delete":
        target.unlink()
    else:
        damage(target, how)
    with pytest.raises(CheckpointError, match=str(target)):
        training.load_checkpoint(saved, template())


def test_pieces_that_do_not_cover_a_leaf_are_an_error(saved):
    """Even with matching checksums (e.g. a buggy writer), a partial leaf is never restored."""
    file = saved / "process_00000.npz"
    with np.load(file) as npz:
        arrays = {k: npz[k] for k in npz.files}
    index = json.loads(str(arrays["__index__"]))
    dropped = index.pop()
    del arrays[dropped[1]]
    arrays["__index__"] = np.array(json.dumps(index))
    file.unlink()
    np.savez(file, **arrays)
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["files"][0]["size"] = file.stat().st_size
    manifest["files"][0]["sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    manifest["manifest_sha256"] = hashlib.sha256(
        json.dumps(body, sort_keys=True).encode()
    ).hexdigest()
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=f"incomplete: leaf {dropped[0]}"):
        training.load_checkpoint(saved, template())


# --------------------------------------------------------------------------- crashes


class Crash(BaseException):
    pass


def crash_at_fsync(monkeypatch, n):
    """Make the n-th ``os.fsync`` of a save raise, as if the machine died right there."""
    calls = {"n": 0}
    real = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == n:
            raise Crash
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


# fsync calls of one single-process save: process file, manifest, .partial dir, parent dir.
FSYNCS_BEFORE_COMMIT, FSYNCS_PER_SAVE = 3, 4


@pytest.mark.parametrize("n", range(1, FSYNCS_PER_SAVE + 1))
def test_crash_at_every_step_of_a_save(tmp_path, monkeypatch, n):
    good = training.save_checkpoint(training.checkpoint_path(tmp_path, 4), state())
    crash_at_fsync(monkeypatch, n)
    target = training.checkpoint_path(tmp_path, 8)
    with pytest.raises(Crash):
        training.save_checkpoint(target, state())
    monkeypatch.undo()
    if n <= FSYNCS_BEFORE_COMMIT:  # not committed: invisible, and refused if named
        assert not target.exists()
        assert training.latest_checkpoint(tmp_path) == good
        with pytest.raises(CheckpointError, match="interrupted save"):
            training.load_checkpoint(target.with_name(target.name + ".partial"), template())
        # the next save of that step clears the debris and succeeds
        assert_same(
            training.load_checkpoint(training.save_checkpoint(target, state()), template()), state()
        )
    else:  # the rename happened: the checkpoint is complete
        assert training.latest_checkpoint(tmp_path) == target
        assert_same(training.load_checkpoint(target, template()), state())


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name fds")
def test_files_are_on_disk_before_the_rename(tmp_path, monkeypatch):
    """Order of durable operations: every file fsync-ed, then the dir, then rename, then parent."""
    events = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(src, dst):
        events.append(("rename", str(src), str(dst)))
        real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    target = tmp_path / "ckpt"
    training.save_checkpoint(target, state())
    partial = str(tmp_path / "ckpt.partial")
    assert events == [
        ("fsync", f"{partial}/process_00000.npz"),
        ("fsync", f"{partial}/manifest.json"),
        ("fsync", partial),
        ("rename", partial, str(target)),
        ("fsync", str(tmp_path)),
    ]


def test_killed_mid_save_leaves_nothing_that_loads(tmp_path):
    """A real SIGKILL (no Python clean-up at all) while the manifest is being flushed."""
    good = training.save_checkpoint(training.checkpoint_path(tmp_path, 4), state())
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import jax.numpy as jnp, umrf
        from test_checkpoint import state
        real, calls = os.fsync, []
        def fsync(fd):
            calls.append(fd)
            if len(calls) == 2:  # the manifest's flush: the process file is already on disk
                os.kill(os.getpid(), signal.SIGKILL)
            real(fd)
        os.fsync = fsync
        umrf.training.save_checkpoint(umrf.training.checkpoint_path({str(tmp_path)!r}, 8), state())
        """
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=120, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    partial = tmp_path / "ckpt_000000008.partial"
    assert (partial / "process_00000.npz").exists() and not (tmp_path / "ckpt_000000008").exists()
    assert training.latest_checkpoint(tmp_path) == good
    with pytest.raises(CheckpointError, match=str(partial)):
        training.load_checkpoint(partial, template())
    training.prune_checkpoints(tmp_path, keep=2)  # debris older than the newest is cleared
    assert partial.exists()  # (not older: step 8 > 4, a retry of step 8 will clear it)
    training.save_checkpoint(training.checkpoint_path(tmp_path, 12), state())
    training.prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_000000004", "ckpt_000000012"]


# --------------------------------------------------------------------------- policy


def test_never_overwrites(tmp_path, saved):
    with pytest.raises(FileExistsError, match=str(saved)):
        training.save_checkpoint(saved, state())

    def loss_fn(key, params, batch, extra):
        return jnp.mean((batch - params) ** 2), extra

    data = jnp.linspace(0.0, 1.0, 16)
    kw = dict(num_steps=4, batch_size=4, progress=False, checkpoint_dir=tmp_path / "run")
    training.fit(loss_fn, optax.sgd(0.1), jax.random.key(0), jnp.zeros(1), data, **kw)
    with pytest.raises(ValueError, match="resume=True"):
        training.fit(
            loss_fn, optax.sgd(0.1), jax.random.key(0), jnp.zeros(1), data, resume=False, **kw
        )


def test_restore_keeps_the_template_sharding(tmp_path):
    mesh = umrf.sharding.chains_mesh()
    tree = {"chains": umrf.sharding.shard_chains(jnp.arange(32.0).reshape(16, 2), mesh)}
    path = training.save_checkpoint(tmp_path / "c", tree)
    back = training.load_checkpoint(path, tree)
    assert back["chains"].sharding == tree["chains"].sharding
    np.testing.assert_array_equal(np.asarray(back["chains"]), np.asarray(tree["chains"]))


def test_checkpoints_of_umrf_0_1_still_load(tmp_path):
    """The single-file format of 0.1 (``ckpt_<step>.npz``), written here as 0.1 wrote it."""
    tree = {"w": jnp.arange(3.0), "h": jnp.ones(2, jnp.bfloat16), "key": jax.random.key(9)}
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    arrays, metas = {}, []
    for i, leaf in enumerate(leaves):
        meta = {}
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            meta["key_impl"] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        arr = np.asarray(leaf)
        meta.update(dtype=str(arr.dtype), shape=list(arr.shape))
        if arr.dtype.kind == "V":
            arr, meta["raw_bits"] = arr.view(f"u{arr.dtype.itemsize}"), True
        arrays[f"leaf_{i:05d}"] = arr
        metas.append(meta)
    metadata = {
        "format": "umrf-checkpoint-v1",
        "step": None,
        "treedef": str(treedef),
        "leaves": metas,
    }
    path = tmp_path / "ckpt_000000002.npz"
    np.savez(path, __metadata__=np.array(json.dumps(metadata)), **arrays)
    assert training.latest_checkpoint(tmp_path) == path
    back = training.load_checkpoint(path, tree)
    assert_same(back, tree)
    damage(path, "truncate")
    with pytest.raises(CheckpointError, match=str(path)):
        training.load_checkpoint(path, tree)
