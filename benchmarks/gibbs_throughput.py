"""Checkerboard Gibbs throughput on the 2-D Ising model at β = 0.4407: umrf vs thrml.

The suite lives in the package (``umrf.bench``, the cases ``gibbs/*``: see
``umrf/bench/_gibbs.py`` for every row): 64×64 × 64 chains and 128×128 × 16
chains, 200 full sweeps from the same random start, spin updates per second
with compile time apart, and the energy per site after the run as a sanity
check. Beside umrf and thrml: the noise-only ceiling (the random words of a
sweep under umrf's per-chain key schedule), the local fields without random
numbers, and the "rebuilt every call" row, where
``umrf.samplers.gibbs(umrf.models.ising(...))`` is rebuilt inside every timed
call: umrf's samplers are value-equal, so it runs the cached program (0
compilations) at the cost of reusing the sampler. This script writes the
``gibbs_throughput`` section of ``benchmarks/RESULTS.md``; ``umrf bench
--only gibbs`` prints the same tables from an installed umrf.

Usage:
  .venv/bin/python benchmarks/gibbs_throughput.py           # 200 sweeps
  .venv/bin/python benchmarks/gibbs_throughput.py --quick   # 20 sweeps, smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_section  # noqa: E402

from umrf import bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 sweeps, smoke run")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (best kept)")
    args = parser.parse_args()
    sweeps = 20 if args.quick else 200
    report = bench.run_suite(bench.Config(steps=sweeps, repeats=args.repeats), only=["gibbs/*"])
    lines = []
    for case in report["cases"]:
        rows = {r["label"]: r for r in case["rows"]}
        reuse, rebuilt = rows["umrf Gibbs"], rows["umrf Gibbs, rebuilt every call"]
        line = (
            f"* {case['name']}: rebuilt every call / reused = "
            f"{case['summary']['rebuilt_vs_reused']:.2f} ({rebuilt['compiles']} compilations "
            f"when rebuilt, {reuse['compiles']} for the first build)"
        )
        if rows.get("thrml"):
            line += f"; umrf / thrml = {reuse['vs_peer']:.2f}"
        lines.append(line)
    command = "`.venv/bin/python benchmarks/gibbs_throughput.py" + (
        " --quick`" if args.quick else "`"
    )
    body = (
        f"Command: {command} (the `gibbs/*` cases of `umrf bench`). Timings on a shared machine "
        "are noisy; rerun on a quiet one.\n\n" + "\n".join(lines) + "\n\n" + bench.render(report)
    )
    print(body)
    if not args.quick:
        write_section("gibbs_throughput", body)


if __name__ == "__main__":
    main()
