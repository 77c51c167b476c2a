"""The suite's machinery: configuration, cases and their rows, timing, the report.

A **case** (:class:`Case`) is one workload (a target and a sampler family,
e.g. ``langevin/gaussian``); building it for a :class:`Config` gives a
:class:`Workload`: a title, the work of one run (chain-steps, spin updates)
and its **rows** (:class:`Job`): the umrf samplers, the peers, and the
reference loops (the noise-only ceiling and the gradient-only bound). Every
row is a function ``run(key)`` whose result is blocked on.

Timing (:func:`measure`). Each row's first call is timed alone, with the
compilations inside it counted and timed through ``jax.monitoring`` (trace,
lowering and XLA compile: ``compile_s``; ``0`` when the program was already
compiled, e.g. a sampler rebuilt from an equal model). The rows are then run
``repeats`` times round-robin and the best run is kept (``run_s``), which is
robust to load from other processes. ``rate = work / run_s``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax

__all__ = ["Case", "Config", "Job", "Row", "Workload", "measure"]

_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_BACKEND_COMPILE = _COMPILE_EVENTS[2]


@dataclass(frozen=True)
class Config:
    """Sizes of one run of the suite.

    Attributes:
      chains: number of chains (``None``: each case's default: 4096 Langevin
        chains; 64 and 16 chains for the 64² and 128² Ising lattices).
      steps: steps per chain (``None``: 1000 Langevin steps, 200 Gibbs sweeps).
      dim: dimension of the Gaussian and isotropic Langevin targets.
      repeats: timed runs per row (the best is kept).
      quick: tiny sizes for a smoke run (seconds, dominated by compilation).
    """

    chains: int | None = None
    steps: int | None = None
    dim: int = 100
    repeats: int = 3
    quick: bool = False

    def pick(self, chains: int, steps: int, quick_chains: int, quick_steps: int) -> tuple:
        """``(chains, steps)`` for a case with these defaults (explicit values win).

        Examples:
          >>> import umrf
          >>> umrf.bench.Config(quick=True).pick(4096, 1000, 256, 20)
          (256, 20)
          >>> umrf.bench.Config(chains=64).pick(4096, 1000, 256, 20)
          (64, 1000)
        """
        c = self.chains or (quick_chains if self.quick else chains)
        s = self.steps or (quick_steps if self.quick else steps)
        return c, s


@dataclass(frozen=True)
class Job:
    """One row of a workload: a timed function and how to read it.

    Attributes:
      label: the row's name in the table (``"umrf MALA"``).
      kind: ``"umrf"``, ``"peer"``, ``"ceiling"`` (the noise-only loop, the
        reference of the ``vs ceiling`` column) or ``"bound"`` (another
        reference loop, e.g. gradient only).
      run: ``run(key) -> pytree``; jitted (or calling jitted code).
      compare_to: label of the peer row this umrf row is compared with.
      note: one line for the table.
      library: the package that runs the row (``"umrf"``, ``"blackjax"``, ...).
    """

    label: str
    kind: str
    run: Callable[[jax.Array], Any]
    compare_to: str | None = None
    note: str = ""
    library: str = "umrf"


@dataclass
class Workload:
    """A case built for one :class:`Config`: what runs and how much work one run is."""

    title: str
    unit: str
    work: int
    jobs: list[Job]
    missing_peers: list[str] = field(default_factory=list)
    check: Callable[[str, Any], str] | None = None  # optional sanity figure per row
    #: ``(sampler, ceiling, other)`` row labels: the sampler's step draws the ceiling's
    #: random numbers AND does the other row's work, each already using every core, so
    #: ``sampler / ceiling ≤ t_ceiling / (t_ceiling + t_other)`` (the report's bound).
    bound: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class Case:
    """A registered workload: ``build(config) -> Workload``.

    Attributes:
      name: ``family/target`` (``"gibbs/ising64"``); ``--only`` matches it.
      build: builds the :class:`Workload` for a :class:`Config`.
      description: one line for ``umrf bench --list``.
      quick: whether ``--quick`` runs this case (the smallest of a family).
    """

    name: str
    build: Callable[[Config], Workload]
    description: str = ""
    quick: bool = True


@dataclass
class Row:
    """The measured figures of one :class:`Job`."""

    label: str
    kind: str
    library: str
    compile_s: float
    compiles: int
    first_call_s: float
    run_s: float
    rate: float
    vs_ceiling: float | None = None
    vs_peer: float | None = None
    peer: str | None = None
    note: str = ""
    check: str = ""


class _CompileClock:
    def __init__(self) -> None:
        self.seconds = 0.0
        self.compiles = 0

    def __call__(self, event: str, duration: float, **kwargs: Any) -> None:
        if event in _COMPILE_EVENTS:
            self.seconds += duration
            self.compiles += event == _BACKEND_COMPILE


@contextlib.contextmanager
def _compile_clock() -> Iterator[_CompileClock]:
    clock = _CompileClock()
    jax.monitoring.register_event_duration_secs_listener(clock)
    try:
        yield clock
    finally:
        jax.monitoring.unregister_event_duration_listener(clock)


def _call(job: Job, key: jax.Array) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = jax.block_until_ready(job.run(key))
    return time.perf_counter() - t0, out


def measure(workload: Workload, repeats: int, key: jax.Array) -> list[Row]:
    """Time every row of ``workload`` (see the module docstring) and derive the ratios."""
    first: dict[str, tuple[float, float, int, Any]] = {}
    for job in workload.jobs:
        with _compile_clock() as clock:
            seconds, out = _call(job, key)
        first[job.label] = (seconds, clock.seconds, clock.compiles, out)
    best = {label: f[0] for label, f in first.items()}
    for _ in range(max(1, repeats)):
        for job in workload.jobs:
            best[job.label] = min(best[job.label], _call(job, key)[0])
    rows = []
    for job in workload.jobs:
        first_s, compile_s, compiles, out = first[job.label]
        run_s = best[job.label]
        check = workload.check(job.label, out) if workload.check else ""
        rows.append(
            Row(
                label=job.label,
                kind=job.kind,
                library=job.library,
                compile_s=compile_s,
                compiles=compiles,
                first_call_s=first_s,
                run_s=run_s,
                rate=workload.work / run_s,
                note=job.note,
                check=check,
                peer=job.compare_to,
            )
        )
    by_label = {r.label: r for r in rows}
    ceiling = next((r for r in rows if r.kind == "ceiling"), None)
    for r in rows:
        if ceiling is not None:
            r.vs_ceiling = r.rate / ceiling.rate
        ref = by_label.get(r.peer) if r.peer else None
        r.vs_peer = r.rate / ref.rate if ref is not None else None
        if ref is None:
            r.peer = None
    return rows


def finite_positive(x: float) -> bool:
    """True for a finite ``x > 0`` (every rate, run time and ratio of a report)."""
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A Markdown table (floats with 4 significant digits)."""

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
