"""``umrf bench``: the sampler-throughput suite of the installed package (``umrf.bench``).

Runs on whatever ``jax.default_backend()`` is (CPU, GPU, TPU): ULA, MALA and
annealed Langevin on the 2-D mixture and a dense Gaussian (and an isotropic
Gaussian), checkerboard Gibbs on Ising lattices, each beside the noise-only
ceiling, a bound without random numbers, and blackjax / thrml when they are
installed. Prints one progress line per case, then a table per case (compile
time apart from run time), and with ``--json PATH`` writes the report for
scripts (schema ``umrf-bench/1``, see :func:`umrf.bench.run_suite`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "sampler throughput on this machine's default JAX backend, beside the peers"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``umrf bench``."""
    parser.add_argument(
        "--chains",
        type=_positive,
        help="chains per case (None: 4096 Langevin, 64/16 Ising, 256 discrete)",
    )
    parser.add_argument(
        "--steps", type=_positive, help="steps per chain (None: 1000 steps, 200 Gibbs sweeps)"
    )
    parser.add_argument("--dim", type=_positive, default=100, help="Gaussian target dimension")
    parser.add_argument(
        "--only",
        action="append",
        metavar="PATTERN",
        help="run the cases whose name matches (glob or substring; repeat or comma-separate), "
        "e.g. --only gibbs or --only langevin/gaussian",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke run, dominated by compilation"
    )
    parser.add_argument(
        "--repeats", type=_positive, default=3, help="timed runs per row (best kept)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--list", action="store_true", help="list the cases and peers, run nothing")


def run(args: argparse.Namespace) -> int:
    """Run the suite (or list it); returns the exit status."""
    from umrf import bench

    only = [p for group in args.only or [] for p in group.split(",") if p]
    if args.list:
        for case in bench.CASES.values():
            quick = "" if case.quick else "  (not in --quick)"
            print(f"{case.name:22s} {case.description}{quick}")
        for name, what in bench.PEERS.items():
            version = bench.peer_version(name)
            status = (
                f"installed ({version})" if version else f"missing: {bench.install_hint([name])}"
            )
            print(f"peer {name}: {what}; {status}")
        return 0
    config = bench.Config(
        chains=args.chains, steps=args.steps, dim=args.dim, repeats=args.repeats, quick=args.quick
    )
    try:
        cases = bench.select_cases(only, quick=args.quick)
    except ValueError as err:
        print(f"umrf bench: {err}", file=sys.stderr)
        return 2
    missing = [name for name in bench.PEERS if bench.peer_version(name) is None]
    if missing:
        print(
            f"peers not installed ({', '.join(missing)}): {bench.install_hint(missing)}", flush=True
        )
    names = [c.name for c in cases]
    report = bench.run_suite(config, only=names, log=lambda line: print(line, flush=True))
    print()
    print(bench.render(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {args.json.resolve()}")
    return 0
