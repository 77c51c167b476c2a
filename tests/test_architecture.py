"""Package structure: no import cycles, no private names imported across modules.

The graph is read from the source with ``ast`` (module-level imports only, the
ones that run at import time). Importing ``umrf.a._m`` also runs the package
``umrf.a``'s ``__init__``, so that package is an edge too (the root ``umrf``
package is always imported first and is left out).
"""

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent / "umrf"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py") if p.name != "__main__.py"}


def top_level_imports(path: Path):
    """``(module, imported names)`` of every umrf import executed at import time."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("umrf"):
                    yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("umrf"):
            yield node.module, [a.name for a in node.names]


def resolve(module: str, names: list[str]) -> set[str]:
    """The umrf modules an import statement loads (submodules named in ``names`` included)."""
    out = {module}
    out |= {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}
    for m in list(out):
        parts = m.split(".")
        out |= {".".join(parts[:k]) for k in range(2, len(parts))}
    return {m for m in out if m in MODULES and m != "umrf"}


def import_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for name, path in MODULES.items():
        g.add_node(name)
        own_packages = {".".join(name.split(".")[:k]) for k in range(1, len(name.split(".")))}
        for module, names in top_level_imports(path):
            for dep in resolve(module, names) - own_packages - {name}:
                g.add_edge(name, dep)
    return g


def test_no_import_cycles():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for name, path in MODULES.items():
        for module, names in top_level_imports(path):
            bad += [
                f"{name}: from {module} import {n}"
                for n in names
                if n.startswith("_") and f"{module}.{n}" not in MODULES  # a module is fine
            ]
    assert not bad, bad


def test_private_modules_of_a_package_are_imported_only_inside_it():
    """``umrf.pkg._mod`` is private to ``umrf.pkg``; shared homes live at the top (``umrf._x``)."""
    bad = []
    for name, path in MODULES.items():
        package = ".".join(name.split(".")[:2])
        for module, _ in top_level_imports(path):
            parts = module.split(".")
            private_at = next((k for k, p in enumerate(parts) if p.startswith("_")), None)
            if private_at is None or private_at == 1:
                continue  # public, or a top-level shared home umrf._x
            owner = ".".join(parts[:private_at])
            if not (package == owner or name.startswith(owner + ".")):
                bad.append(f"{name} imports {module}")
    assert not bad, bad
