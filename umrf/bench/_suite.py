"""Running the registered cases: selection, progress, the report (a JSON-ready dict), tables."""

from __future__ import annotations

import fnmatch
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import jax

from umrf.bench._core import Case, Config, Workload, measure, table
from umrf.bench._peers import PEERS, install_hint, peer_version
from umrf.bench._registry import CASES

__all__ = ["SCHEMA", "render", "run_suite", "select_cases"]

#: Version tag of the report's layout (``report["schema"]``).
SCHEMA = "umrf-bench/1"


def select_cases(only: Sequence[str] | None = None, *, quick: bool = False) -> list[Case]:
    """The registered cases to run, in registry order.

    Args:
      only: patterns matched against case names: a glob (``"gibbs/*"``) or a
        substring (``"gaussian"``); ``None`` runs every case (with ``quick``,
        the cases marked ``quick``).
      quick: without ``only``, keep only the quick cases.

    Raises:
      ValueError: a pattern that matches no case (the message lists them).

    Examples:
      >>> import umrf
      >>> [case.name for case in umrf.bench.select_cases(["gibbs"])]
      ['gibbs/ising64', 'gibbs/ising128']
      >>> [case.name for case in umrf.bench.select_cases(quick=True)]
      ['langevin/mixture2d', 'langevin/gaussian', 'gibbs/ising64']
    """
    cases = list(CASES.values())
    if not only:
        return [c for c in cases if c.quick or not quick]
    chosen = []
    for pattern in only:
        hits = [c for c in cases if fnmatch.fnmatch(c.name, pattern) or pattern in c.name]
        if not hits:
            raise ValueError(
                f"--only {pattern!r} matches no case; the cases are: {', '.join(CASES)}."
            )
        chosen += [c for c in hits if c not in chosen]
    return [c for c in cases if c in chosen]


def _summary(workload: Workload, rows: list[dict[str, Any]]) -> dict[str, float]:
    rates = {r["label"]: r["rate"] for r in rows}
    out: dict[str, float] = {}
    if workload.bound is not None:
        sampler, ceiling, other = workload.bound
        t_noise, t_other = 1 / rates[ceiling], 1 / rates[other]
        out["vs_ceiling"] = rates[sampler] / rates[ceiling]
        out["vs_ceiling_bound"] = t_noise / (t_noise + t_other)
    if "umrf Gibbs, rebuilt every call" in rates:
        out["rebuilt_vs_reused"] = rates["umrf Gibbs, rebuilt every call"] / rates["umrf Gibbs"]
    return out


def run_suite(
    config: Config,
    *,
    only: Sequence[str] | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the selected cases on ``jax.default_backend()`` and return the report.

    Args:
      config: sizes (see :class:`Config`).
      only: case-name patterns (see :func:`select_cases`).
      seed: the PRNG seed of every timed run.
      log: where the progress lines go (one when a case starts, one when it ends).

    Returns:
      A JSON-serialisable dict: ``schema``, ``umrf``/``jax`` versions,
      ``backend``, ``devices``, ``machine``, ``config``, ``peers`` (version or
      ``None``, what they are compared on, how to install them) and
      ``cases``: per case its ``name``, ``title``, ``unit``, ``work`` (units of
      one run), ``rows`` (one dict of :class:`umrf.bench.Row` fields each:
      ``rate``, ``run_s``, ``first_call_s``, ``compile_s``, ``compiles``,
      ``vs_ceiling``, ``vs_peer``, ...), ``missing_peers``, ``bound`` (the
      three row labels of the ceiling bound, or ``None``), ``summary``
      (``vs_ceiling``, ``vs_ceiling_bound``, ``rebuilt_vs_reused`` where they
      apply) and ``seconds`` (wall time of the case).
    """
    import umrf

    cases = select_cases(only, quick=config.quick)
    key = jax.random.key(seed)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "umrf": umrf.__version__,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": sorted({d.device_kind for d in jax.devices()}),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "config": asdict(config),
        "peers": {
            name: {
                "version": peer_version(name),
                "compared_on": what,
                "install": install_hint([name]),
            }
            for name, what in PEERS.items()
        },
        "cases": [],
    }
    for i, case in enumerate(cases, 1):
        t0 = time.perf_counter()
        workload = case.build(config)
        log(f"[{i}/{len(cases)}] {case.name}: {workload.title} ({len(workload.jobs)} rows)")
        rows = [asdict(r) for r in measure(workload, config.repeats, key)]
        seconds = time.perf_counter() - t0
        compile_s = sum(r["compile_s"] for r in rows)
        log(
            f"[{i}/{len(cases)}] {case.name}: done in {seconds:.1f} s ({compile_s:.1f} s compiling)"
        )
        report["cases"].append(
            {
                "name": case.name,
                "title": workload.title,
                "unit": workload.unit,
                "work": workload.work,
                "rows": rows,
                "missing_peers": workload.missing_peers,
                "summary": _summary(workload, rows),
                "bound": list(workload.bound) if workload.bound else None,
                "seconds": seconds,
            }
        )
    return report


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def render(report: dict[str, Any]) -> str:
    """The report as Markdown: one table per case, the bounds, and the peers' status."""
    headers = [
        "row",
        "rate",
        "run s",
        "compile s",
        "first call s",
        "vs peer",
        "vs ceiling",
        "check",
        "note",
    ]
    parts = [
        f"umrf {report['umrf']}, jax {report['jax']} on {report['backend']} "
        f"({', '.join(report['devices'])}); best of {report['config']['repeats']} runs; "
        "compile s = tracing + lowering + XLA compilation inside the first call "
        "(0: the program was already compiled)."
    ]
    for case in report["cases"]:
        rows = []
        for r in case["rows"]:
            vs_peer = f"{_ratio(r['vs_peer'])} {r['peer']}" if r["vs_peer"] is not None else "-"
            rows.append(
                [
                    r["label"],
                    f"{r['rate']:.4g}",
                    r["run_s"],
                    r["compile_s"],
                    r["first_call_s"],
                    vs_peer,
                    _ratio(r["vs_ceiling"]),
                    r["check"],
                    r["note"],
                ]
            )
        heading = f"### {case['name']}: {case['title']} ({case['unit']})"
        parts.append(heading + "\n\n" + table(rows, headers))
        s = case["summary"]
        if "vs_ceiling" in s:
            sampler, _, other = case["bound"]
            parts.append(
                f"{sampler} / ceiling = {s['vs_ceiling']:.2f}; the most it can reach is "
                f"t_ceiling / (t_ceiling + t_other) = {s['vs_ceiling_bound']:.2f} (other: {other})."
            )
        if "rebuilt_vs_reused" in s:
            rebuilt = next(r for r in case["rows"] if r["label"].endswith("rebuilt every call"))
            parts.append(
                f"Sampler rebuilt every call / reused = {s['rebuilt_vs_reused']:.2f}x, with "
                f"{rebuilt['compiles']} compilations in its first call."
            )
    missing = sorted({p for case in report["cases"] for p in case["missing_peers"]})
    if missing:
        parts.append(
            "Peers not installed: "
            + ", ".join(missing)
            + f". Install them to add their rows: {install_hint(missing)}"
        )
    return "\n\n".join(parts)
