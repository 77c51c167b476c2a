"""``umrf bench``: list the benchmark scripts of a source checkout, or run one."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HELP = "list the benchmark scripts, or run one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``umrf bench``."""
    parser.add_argument("name", nargs="?", help="script name (e.g. training_throughput)")
    parser.add_argument("--quick", action="store_true", help="pass --quick to the script")


def run(args: argparse.Namespace) -> int:
    """List or run a benchmark script; returns the exit status."""
    root = Path(__file__).resolve().parents[2] / "benchmarks"
    scripts = sorted(p for p in root.glob("*.py") if not p.name.startswith("_"))
    if not scripts:
        print("no benchmark scripts found (benchmarks/ ships with the source tree only)")
        return 1
    if args.name is None:
        print("benchmarks (run with `umrf bench NAME [--quick]`):")
        for p in scripts:
            print(f"  {p.stem}")
        return 0
    match = [p for p in scripts if p.stem == args.name]
    if not match:
        print(f"unknown benchmark {args.name!r}; choose from {[p.stem for p in scripts]}")
        return 2
    cmd = [sys.executable, str(match[0])] + (["--quick"] if args.quick else [])
    return subprocess.call(cmd, cwd=root.parent)
