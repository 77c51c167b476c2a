"""Langevin throughput: umrf ULA/MALA/annealed Langevin vs blackjax, torchebm and the ceilings.

The suite itself lives in the package (``umrf.bench``, the cases
``langevin/*``: see ``umrf/bench/_langevin.py`` for every row); this script
runs it at benchmark size (default 4096 chains × 1000 steps on the 2-D
mixture, a dense 100-D Gaussian and ½‖x‖² in 100-D), adds torchebm
(PyTorch, eager, not part of ``umrf bench``) when it is installed, and
writes the ``langevin_throughput`` section of ``benchmarks/RESULTS.md``.
``umrf bench --only langevin`` prints the same tables from an installed umrf.

Usage::

    .venv/bin/python benchmarks/langevin_throughput.py           # full run
    .venv/bin/python benchmarks/langevin_throughput.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_section  # noqa: E402

from umrf import bench  # noqa: E402

TARGETS = {
    "langevin/mixture2d": lambda dim: bench.mixture2d(),
    "langevin/gaussian": bench.gaussian,
    "langevin/isotropic": bench.isotropic,
}


def torchebm_rate(target: bench.Target, chains: int, steps: int) -> float:
    """Chain-steps/s of ``torchebm.samplers.LangevinDynamics`` on the same target (eager)."""
    import torch
    from torchebm.core import BaseModel
    from torchebm.samplers import LangevinDynamics

    params = target.params
    if target.name == "mixture2d":
        means = torch.tensor(np.asarray(params.means))
        log_w = torch.log(torch.tensor(np.asarray(params.weights)))
        var = float(params.covariances[0, 0, 0])

        class Energy(BaseModel):
            def forward(self, x):
                sq = ((x[:, None, :] - means[None]) ** 2).sum(-1)
                log_n = -0.5 * sq / var - math.log(2 * math.pi * var)
                return -torch.logsumexp(log_w[None] + log_n, dim=1)

    elif target.name == "gaussian":
        prec = torch.tensor(np.asarray(params.precision))

        class Energy(BaseModel):
            def forward(self, x):
                return 0.5 * ((x @ prec) * x).sum(-1)

    else:

        class Energy(BaseModel):
            def forward(self, x):
                return 0.5 * (x * x).sum(-1)

    torch.manual_seed(0)
    sampler = LangevinDynamics(Energy(), step_size=bench.LANGEVIN_STEP_SIZE, noise_scale=1.0)
    x0 = torch.zeros(chains, target.dim)
    sampler.sample(x=x0.clone(), n_steps=5)  # warm-up
    t0 = time.perf_counter()
    sampler.sample(x=x0.clone(), n_steps=steps)
    return chains * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--chains", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=4, help="timed rounds (best kept)")
    args = parser.parse_args()
    chains, steps, repeats = args.chains, args.steps, args.repeats
    if args.quick:
        chains, steps, repeats = 256, 50, 2
    config = bench.Config(chains=chains, steps=steps, dim=args.dim, repeats=repeats)
    report = bench.run_suite(config, only=list(TARGETS))

    summary, torch_rows = [], []
    for case in report["cases"]:
        rates = {r["label"]: r["rate"] for r in case["rows"]}
        name = case["name"].split("/")[1]
        s = case["summary"]
        if "blackjax MALA" in rates:
            vs_blackjax = rates["umrf MALA"] / rates["blackjax MALA"]
            summary.append(
                f"* {name}: umrf MALA / blackjax MALA = {vs_blackjax:.2f}"
                f" (target ≥ 1); umrf ULA / ceiling = {s['vs_ceiling']:.2f} (target ≥ 0.85; "
                f"bound t_noise / (t_noise + t_gradient) = {s['vs_ceiling_bound']:.2f})"
            )
        try:
            rate = torchebm_rate(TARGETS[case["name"]](args.dim), chains, steps)
        except ImportError as err:
            torch_rows.append([name, "not installed", "-", f"pip install torchebm ({err})"])
            continue
        torch_rows.append([name, rate, f"{rates['umrf ULA'] / rate:.2f}x", "LangevinDynamics"])

    body = (
        "Command: `.venv/bin/python benchmarks/langevin_throughput.py"
        + (" --quick`" if args.quick else "`")
        + " (the `langevin/*` cases of `umrf bench`). Timings on a shared machine are noisy; "
        "rerun on a quiet one.\n\n"
        + "\n".join(summary)
        + "\n\n"
        + bench.render(report)
        + "\n\ntorchebm (PyTorch, eager, same targets and step size; one timed run):\n\n"
        + table(torch_rows, ["target", "chain-steps/s", "umrf ULA / torchebm", "note"])
    )
    print(body)
    if not args.quick:
        write_section("langevin_throughput", body)


if __name__ == "__main__":
    main()
