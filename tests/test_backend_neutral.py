"""Nothing in umrf forces the CPU: CPU-only choices apply on the CPU backend alone.

* ``compiler_options="auto"`` of the training step resolves to
  ``CPU_COMPILER_OPTIONS`` on the CPU backend and to nothing on any other
  (checked by making ``jax.default_backend`` report "gpu" and "tpu");
* no module of the package pins a platform or a device (a scan of the source
  for the ways JAX code can force the CPU), so ``umrf bench`` and everything
  else run on whatever ``jax.default_backend()`` is.
"""

import re
from pathlib import Path

import jax
import pytest

from umrf import training
from umrf.training import _step

PACKAGE = Path(__file__).resolve().parents[1] / "umrf"

# Ways to pin JAX to the CPU: platform flags and env vars, CPU device lookups, explicit backends.
FORCING = re.compile(
    r"jax_platforms?\b|jax_platform_name|JAX_PLATFORMS|devices\(\s*['\"]cpu['\"]"
    r"|backend\s*=\s*['\"]cpu['\"]|jax\.default_device|CUDA_VISIBLE_DEVICES"
)


@pytest.fixture
def fresh_auto_options():
    _step._auto_compiler_options.cache_clear()
    yield
    _step._auto_compiler_options.cache_clear()


@pytest.mark.parametrize("backend", ["gpu", "tpu"])
def test_auto_compiler_options_are_none_off_the_cpu(monkeypatch, fresh_auto_options, backend):
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    assert _step.resolve_compiler_options("auto") == ()
    assert _step.resolve_compiler_options(None) == ()
    explicit = dict(training.CPU_COMPILER_OPTIONS)
    assert _step.resolve_compiler_options(explicit) == tuple(sorted(explicit.items()))


def test_auto_compiler_options_on_the_cpu(fresh_auto_options):
    if jax.default_backend() != "cpu":
        pytest.skip("the CPU choice is checked where the tests run on the CPU")
    assert _step.resolve_compiler_options("auto") == tuple(training.CPU_COMPILER_OPTIONS.items())


@pytest.mark.parametrize(
    "line",
    [
        'jax.config.update("jax_platforms", "cpu")',
        'os.environ["JAX_PLATFORMS"] = "cpu"',
        'x = jax.device_put(x, jax.devices("cpu")[0])',
        'jax.jit(f, backend="cpu")',
        "with jax.default_device(cpu):",
    ],
)
def test_the_scan_sees_cpu_pinning(line):
    assert FORCING.search(line)


def test_no_module_pins_the_cpu():
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if FORCING.search(line):
                hits.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)
