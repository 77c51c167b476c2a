"""Shared helpers for umrf's side-by-side benchmarks.

* ``time_jax(fn, *args)`` separates the first call (trace + compile + run)
  from the steady-state run time (median of repeats, results blocked on).
* ``time_python(fn)`` does the same for eager peers (PyTorch, numpy).
* ``machine()`` describes the host for ``RESULTS.md``.
* ``write_section(name, text)`` replaces one benchmark's section of
  ``benchmarks/RESULTS.md`` (file-locked, so benchmarks may run concurrently).
* ``table(rows, headers)`` renders a Markdown table.
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = (
    "# umrf benchmark results\n\n"
    "Each section is the latest output of one script in `benchmarks/`.\n"
)


def _block(x: Any) -> Any:
    import jax

    return jax.block_until_ready(x)


def time_jax(fn: Callable[..., Any], *args: Any, repeats: int = 5) -> tuple[float, float, Any]:
    """Return ``(first_call_s, run_s, output)`` for a jitted ``fn``.

    ``first_call_s`` includes tracing and compilation; ``run_s`` is the median
    of ``repeats`` later calls with the same shapes.
    """
    t0 = time.perf_counter()
    out = _block(fn(*args))
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = _block(fn(*args))
        runs.append(time.perf_counter() - t0)
    return first, statistics.median(runs), out


def time_python(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1) -> tuple[float, Any]:
    """Median wall time of ``fn()`` after ``warmup`` untimed calls."""
    out = None
    for _ in range(warmup):
        out = fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), out


def machine() -> str:
    """One line describing the host: CPU model, cores, Python, jax version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import jax

    devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    return (
        f"{cpu}; {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"jax {jax.__version__} on {jax.default_backend()} ({devices})"
    )


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Render rows as a Markdown table (floats with 4 significant digits)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, text: str) -> None:
    """Replace (or append) the ``name`` section of ``benchmarks/RESULTS.md``."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = f"{begin}\n## {name}\n\nRun {stamp} on: {machine()}\n\n{text.strip()}\n{end}"
    RESULTS.touch(exist_ok=True)
    with open(RESULTS, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        old = fh.read() or HEADER
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        new = (
            pattern.sub(lambda _: block, old)
            if pattern.search(old)
            else old.rstrip() + "\n\n" + block + "\n"
        )
        fh.seek(0)
        fh.truncate()
        fh.write(new)
        fcntl.flock(fh, fcntl.LOCK_UN)
