"""``umrf infer FILE.uai [--evid FILE] [--task PR|MAR|MAP]``: exact inference on a UAI model.

Prints the answer in the UAI inference competitions' result format (UAI
2014 "Result file format"): a first line naming the task, then one solution
line:

* ``PR``: ``log10 Z`` (with evidence, ``log10`` of the probability of the
  evidence for a normalised model). The competitions use base 10; umrf's
  ``log_partition`` is the natural log, divided here by ``ln 10``.
* ``MAR``: ``n``, then for each variable its cardinality and its marginal
  probabilities (an observed variable has all mass on its observed state).
* ``MAP`` (``MPE`` is accepted as a synonym): ``n``, then a most probable
  state of every variable (observed ones at their observed state).

Inference is exact (``umrf.inference``, ``method="auto"``: eager on the host,
no compilation). Exit status 0 on success, 1 when the evidence has
probability zero for ``MAR``, 2 for a bad file or argument.
"""

from __future__ import annotations

import argparse
import math
import sys

HELP = "exact inference on a UAI model file (.uai), UAI competition output"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``umrf infer``."""
    parser.add_argument("model", metavar="FILE.uai", help="the model, in the UAI format")
    parser.add_argument("--evid", metavar="FILE", default=None, help="evidence file (.evid)")
    parser.add_argument(
        "--task",
        default="PR",
        type=str.upper,
        choices=("PR", "MAR", "MAP", "MPE"),
        help="PR: log10 of the partition function; MAR: variable marginals; MAP: a most "
        "probable assignment",
    )
    parser.add_argument(
        "--max-table-size",
        type=int,
        default=None,
        help="memory budget in table entries (default: umrf.inference's)",
    )


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return f"{x:.10g}"


def run(args: argparse.Namespace) -> int:
    """Read, condition, infer and print; returns the exit status."""
    import numpy as np

    from umrf.inference import log_partition, log_partition_and_marginals, map_assignment
    from umrf.models import read_uai, read_uai_evidence

    try:
        mrf = read_uai(args.model)
        evidence = read_uai_evidence(args.evid) if args.evid else {}
        small, kept = mrf.condition(evidence, return_mapping=True)
    except (OSError, ValueError, TypeError) as err:
        print(f"umrf infer: error: {err}", file=sys.stderr)
        return 2
    budget = {} if args.max_table_size is None else {"max_table_size": args.max_table_size}
    task = "MAP" if args.task == "MPE" else args.task
    try:
        if task == "PR":
            log_z = float(log_partition(small, **budget))
            print("PR")
            print(_fmt(log_z / math.log(10.0)))
            return 0
        if task == "MAR":
            log_z, mg = log_partition_and_marginals(small, **budget)
            if float(log_z) == -math.inf:
                print(
                    "umrf infer: error: the evidence has probability zero (Z = 0); "
                    "there are no marginals.",
                    file=sys.stderr,
                )
                return 1
            where = {v: j for j, v in enumerate(kept)}
            parts = [str(mrf.num_variables)]
            for v, k in enumerate(mrf.cardinalities):
                if v in where:
                    p = np.asarray(mg.variables[where[v]], np.float64)
                else:
                    p = np.zeros(k)
                    p[evidence[v]] = 1.0
                parts.append(str(k))
                parts += [f"{x:.8g}" for x in p]
            print("MAR")
            print(" ".join(parts))
            return 0
        x_small = np.asarray(map_assignment(small, **budget))
        x = np.zeros(mrf.num_variables, np.int64)
        for j, v in enumerate(kept):
            x[v] = x_small[j]
        for v, s in evidence.items():
            x[v] = s
        print("MAP")
        print(" ".join([str(mrf.num_variables), *(str(int(s)) for s in x)]))
        return 0
    except ValueError as err:  # e.g. the memory budget
        print(f"umrf infer: error: {err}", file=sys.stderr)
        return 2
