"""``umrf bench`` is a feature of the installed package, not of the source tree.

The expensive test builds a wheel from a copy of the sources, installs it
with ``pip install --no-deps --target`` (dependencies come from this
virtualenv through ``PYTHONPATH``; nothing is downloaded but the build
backend pip's isolated build asks for), and runs the installed ``umrf``
console script from an unrelated working directory: ``umrf bench --quick
--json`` on one Langevin and one Gibbs case. The JSON report must follow the
``umrf-bench/1`` schema with every figure finite and positive (compile times
are ``≥ 0``: exactly 0 when a program was already compiled, which the "sampler
rebuilt every call" row must show).
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import umrf
from umrf import bench
from umrf.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUICK_CASES = "langevin/mixture2d,gibbs/ising64"
ROW_KINDS = {"umrf", "peer", "ceiling", "bound"}


def positive(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def check_report(report):
    """The ``umrf-bench/1`` schema, with the figure checks."""
    assert report["schema"] == bench.SCHEMA == "umrf-bench/1"
    for field in ("umrf", "jax", "backend", "machine"):
        assert isinstance(report[field], str) and report[field], field
    assert report["devices"] and all(isinstance(d, str) for d in report["devices"])
    assert set(report["config"]) == {"chains", "steps", "dim", "repeats", "quick"}
    assert set(report["peers"]) == set(bench.PEERS)
    for peer in report["peers"].values():
        assert peer["version"] is None or isinstance(peer["version"], str)
        assert "pip install" in peer["install"] and peer["compared_on"]
    assert report["cases"]
    for case in report["cases"]:
        assert case["name"] in bench.CASES
        assert isinstance(case["title"], str) and case["unit"].endswith("/s")
        assert isinstance(case["work"], int) and case["work"] > 0
        assert positive(case["seconds"])
        assert set(case["missing_peers"]) <= set(bench.PEERS)
        assert all(positive(v) for v in case["summary"].values()), case["summary"]
        kinds = [r["kind"] for r in case["rows"]]
        assert set(kinds) <= ROW_KINDS and kinds.count("ceiling") == 1 and "umrf" in kinds
        labels = {r["label"] for r in case["rows"]}
        if case["bound"] is not None:  # sampler / ceiling and the most it can reach
            assert set(case["bound"]) <= labels and len(case["bound"]) == 3
            assert {"vs_ceiling", "vs_ceiling_bound"} <= set(case["summary"])
        for r in case["rows"]:
            where = f"{case['name']}: {r['label']}"
            for fig in ("rate", "run_s", "first_call_s", "vs_ceiling"):
                assert positive(r[fig]), (where, fig, r[fig])
            assert math.isfinite(r["compile_s"]) and r["compile_s"] >= 0, where
            assert isinstance(r["compiles"], int) and r["compiles"] >= 0, where
            assert math.isclose(r["rate"] * r["run_s"], case["work"], rel_tol=1e-9), where
            if r["vs_peer"] is not None:
                assert positive(r["vs_peer"]) and r["peer"] in labels, where
            assert isinstance(r["note"], str) and isinstance(r["check"], str)


def test_installed_wheel_runs_umrf_bench_quick_json(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "umrf", src / "umrf", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("umrf-*.whl")
    site = tmp_path / "site"
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--quiet", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    assert (site / "umrf" / "bench" / "_suite.py").is_file()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(env, PYTHONPATH=str(site))  # the wheel first; its dependencies from this venv
    where = subprocess.run(
        [sys.executable, "-c", "import umrf.bench; print(umrf.bench.__file__)"],
        capture_output=True, text=True, cwd=elsewhere, env=env, timeout=120,
    )  # fmt: skip
    assert where.returncode == 0 and Path(where.stdout.strip()).is_relative_to(site), where
    out = elsewhere / "out" / "report.json"
    script = site / "bin" / "umrf"
    cmd = [str(script), "bench", "--quick", "--repeats", "1", "--only", QUICK_CASES]
    proc = subprocess.run(
        [*cmd, "--json", str(out)],
        capture_output=True, text=True, cwd=elsewhere, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    check_report(report)
    assert report["backend"] and report["config"]["quick"] is True
    assert [c["name"] for c in report["cases"]] == QUICK_CASES.split(",")
    # progress lines, tables with compile time apart, and the peers said
    for case in report["cases"]:
        assert f"{case['name']}: done in" in proc.stdout
        assert f"### {case['name']}" in proc.stdout
    assert "| row | rate | run s | compile s |" in proc.stdout
    for name, peer in report["peers"].items():
        if peer["version"] is None:
            assert f"pip install {name}" in proc.stdout or name in proc.stdout
    # the sampler rebuilt every call reused the compiled program: not one compilation
    gibbs = {r["label"]: r for r in report["cases"][1]["rows"]}
    assert gibbs["umrf Gibbs"]["compiles"] >= 1
    rebuilt = gibbs["umrf Gibbs, rebuilt every call"]
    assert rebuilt["compiles"] == 0 and rebuilt["compile_s"] == 0.0


def test_case_selection_and_registry():
    assert [c.name for c in bench.select_cases(quick=True)] == [
        "langevin/mixture2d",
        "langevin/gaussian",
        "gibbs/ising64",
    ]
    assert [c.name for c in bench.select_cases()] == list(bench.CASES)
    assert [c.name for c in bench.select_cases(["gibbs/*"])] == ["gibbs/ising64", "gibbs/ising128"]
    assert [c.name for c in bench.select_cases(["gaussian", "mixture"])] == [
        "langevin/mixture2d",
        "langevin/gaussian",
    ]
    with pytest.raises(ValueError, match="matches no case"):
        bench.select_cases(["nope"])
    with pytest.raises(ValueError, match="already registered"):
        bench.register(bench.CASES["gibbs/ising64"])
    with pytest.raises(TypeError, match="Case"):
        bench.register("gibbs/ising64")


def test_a_registered_case_runs_through_the_suite(capsys):
    """The extension point: a user case is listed, run, timed and reported like the built-ins."""
    import jax
    import jax.numpy as jnp

    def build(config):
        chains, steps = config.pick(8, 4, 8, 4)
        x0 = jnp.zeros((chains, 2))
        alg = umrf.samplers.ula(lambda p, x: 0.5 * jnp.sum(x * x), step_size=0.1)
        noise = bench.per_chain_loop(
            lambda k, x: x + jax.random.normal(k, x.shape), lambda x: x, chains, steps
        )
        jobs = [
            bench.Job(
                "umrf ULA",
                "umrf",
                lambda key: umrf.sample_chains(alg, key, None, x0, num_steps=steps)[0].position,
            ),
            bench.Job("noise", "ceiling", lambda key: noise(key, x0)),
        ]
        return bench.Workload("toy", "chain-steps/s", chains * steps, jobs)

    bench.register(bench.Case("test/toy", build, "a toy case"))
    try:
        assert main(["bench", "--list"]) == 0
        assert "test/toy" in capsys.readouterr().out
        report = bench.run_suite(bench.Config(repeats=1), only=["test/toy"], log=lambda s: None)
        check_report(report)
        assert report["cases"][0]["work"] == 8 * 4
        assert [r["label"] for r in report["cases"][0]["rows"]] == ["umrf ULA", "noise"]
        assert "### test/toy" in bench.render(report)
    finally:
        del bench.CASES["test/toy"]


def test_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--chains", "0"])
    assert main(["bench", "--only", "nope"]) == 2
    assert "matches no case" in capsys.readouterr().err


def test_discrete_case_runs_and_reports():
    """GWG, DULA, DMALA: the registered discrete family at quick size, schema and figures."""
    report = bench.run_suite(
        bench.Config(quick=True, repeats=1), only=["discrete/ising32"], log=lambda s: None
    )
    check_report(report)
    labels = [r["label"] for r in report["cases"][0]["rows"]]
    assert labels[:3] == ["umrf GWG", "umrf DULA", "umrf DMALA"]
