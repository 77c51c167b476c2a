"""The ``umrf`` command line.

* ``umrf demo`` trains and samples 2-D energy models (``umrf demo --help``);
  ``umrf demo TASK`` runs a larger worked example (``umrf demo TASK --help``).
* ``umrf bench`` runs the sampler-throughput suite.

Each command and demo task lives in its own module of this package, which
defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``
and imports nothing heavy at module level, so ``umrf --help`` stays instant.
Register a new one with one line in ``COMMANDS`` or ``DEMO_TASKS``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

__all__ = ["COMMANDS", "DEMO_TASKS", "main"]

#: Top-level commands besides ``demo``: name -> module.
COMMANDS: dict[str, str] = {
    "bench": "umrf.cli._bench",
    "infer": "umrf.cli._infer",
}

#: ``umrf demo TASK``: name -> module. ``umrf demo`` alone runs ``umrf.cli._demo_2d``.
DEMO_TASKS: dict[str, str] = {
    "jem": "umrf.cli._demo_jem",
    "ncsn": "umrf.cli._demo_ncsn",
    "rbm": "umrf.cli._demo_rbm",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="umrf",
        description="umrf: undirected graphical models and energy-based models in JAX.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    two_d = importlib.import_module("umrf.cli._demo_2d")
    demo = sub.add_parser(
        "demo",
        help="worked examples: 2-D energy models by default, or `umrf demo TASK`",
        description=(
            "Without a task: train an energy-based model on a 2-D toy data set with multi-noise "
            "denoising score matching (sampled with annealed Langevin) and with persistent "
            "contrastive divergence (sampled with MALA), print sample-quality figures beside "
            "the data-vs-data baseline and write a PNG. With a task: "
            + (", ".join(sorted(DEMO_TASKS)) or "none registered")
            + " (see `umrf demo TASK --help`)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    two_d.add_arguments(demo)
    demo.set_defaults(_run=two_d.run)
    if DEMO_TASKS:
        tasks = demo.add_subparsers(dest="task", metavar="TASK")
        for name, module_name in DEMO_TASKS.items():
            module = importlib.import_module(module_name)
            p = tasks.add_parser(
                name,
                help=module.HELP,
                description=module.HELP,
                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
            )
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``umrf`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    return int(args._run(args))
