"""Pickle-free checkpoints of any pytree of arrays (e.g. a ``TrainState``)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["latest_checkpoint", "load_checkpoint", "save_checkpoint"]

_FORMAT = "umrf-checkpoint-v1"
_CKPT_RE = re.compile(r"^ckpt_(\d{9})\.npz$")


def _to_numpy(leaf: Any) -> tuple[np.ndarray, dict[str, Any]]:
    meta: dict[str, Any] = {}
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        meta["key_impl"] = str(jax.random.key_impl(leaf))
        leaf = jax.random.key_data(leaf)
    arr = np.asarray(jax.device_get(leaf))
    meta["dtype"] = str(arr.dtype)
    meta["shape"] = list(arr.shape)
    if arr.dtype.kind == "V" or arr.dtype.hasobject:  # e.g. bfloat16: store the raw bits
        if arr.dtype.hasobject:
            raise TypeError("checkpoint leaves must be numeric arrays, not Python objects.")
        arr = arr.view(f"u{arr.dtype.itemsize}")
        meta["raw_bits"] = True
    return arr, meta


def save_checkpoint(path: str | os.PathLike, state: Any) -> Path:
    """Save any pytree of arrays (e.g. a :class:`TrainState`) without pickle.

    The file is a ``numpy`` ``.npz`` holding the flattened leaves
    (``leaf_00000``, ...; PRNG keys as their raw key data) and a JSON
    metadata string (format, step, tree structure, per-leaf shape, dtype and
    key implementation). It is written to a temporary file and renamed, so
    an interrupted save never leaves a truncated checkpoint.

    Args:
      path: destination file (``.npz``).
      state: pytree to save.

    Returns:
      The path written.
    """
    path = Path(path)
    leaves, treedef = jax.tree_util.tree_flatten(state)
    arrays, metas = {}, []
    for i, leaf in enumerate(leaves):
        arr, meta = _to_numpy(leaf)
        arrays[f"leaf_{i:05d}"] = arr
        metas.append(meta)
    step = getattr(state, "step", None)
    metadata = {
        "format": _FORMAT,
        "step": None if step is None else int(jax.device_get(step)),
        "treedef": str(treedef),
        "leaves": metas,
    }
    arrays["__metadata__"] = np.array(json.dumps(metadata))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, template: Any) -> Any:
    """Restore a checkpoint into the structure of ``template``.

    Args:
      path: a file written by :func:`save_checkpoint`.
      template: a pytree with the same structure, shapes and dtypes (e.g.
        the initial :class:`TrainState` of the run); its values are ignored.

    Returns:
      A pytree like ``template`` holding the saved values (PRNG keys are
      rewrapped with their saved implementation).

    Raises:
      ValueError: a file of another format, or a structure, shape or dtype
        that differs from ``template``.
    """
    with np.load(path, allow_pickle=False) as npz:
        metadata = json.loads(str(npz["__metadata__"]))
        if metadata.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a umrf checkpoint (format {metadata.get('format')}).")
        leaves, treedef = jax.tree_util.tree_flatten(template)
        if str(treedef) != metadata["treedef"] or len(leaves) != len(metadata["leaves"]):
            raise ValueError(
                f"checkpoint {path} has a different pytree structure than `template`; restore "
                "into a template built exactly as for the saved run (same model, optimiser, extra)."
            )
        out = []
        for i, (leaf, meta) in enumerate(zip(leaves, metadata["leaves"], strict=True)):
            arr = npz[f"leaf_{i:05d}"]
            if meta.get("raw_bits"):
                arr = arr.view(jnp.dtype(meta["dtype"]))
            is_key = "key_impl" in meta
            tmpl = jax.random.key_data(leaf) if is_key else leaf
            t_shape, t_dtype = tuple(jnp.shape(tmpl)), jnp.result_type(tmpl)
            if tuple(arr.shape) != t_shape or arr.dtype != t_dtype:
                raise ValueError(
                    f"checkpoint leaf {i} has shape {arr.shape} and dtype {arr.dtype}, but the "
                    f"template has {t_shape} and {t_dtype}."
                )
            value = jnp.asarray(arr)
            if is_key:
                value = jax.random.wrap_key_data(value, impl=meta["key_impl"])
            out.append(value)
    return jax.tree_util.tree_unflatten(treedef, out)


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """Return the checkpoint with the highest step in ``directory`` (or ``None``)."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = sorted(p for p in directory.iterdir() if _CKPT_RE.match(p.name))
    return found[-1] if found else None


def _checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"ckpt_{step:09d}.npz"


def _prune(directory: Path, keep: int) -> None:
    found = sorted(p for p in directory.iterdir() if _CKPT_RE.match(p.name))
    for p in found[:-keep]:
        p.unlink()
