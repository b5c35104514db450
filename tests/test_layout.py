"""The layout is a test: layers and cycles (import-linter contracts in pyproject.toml), every
module importable alone, no package binding a submodule's name, an honest ``__all__``, and no
module over 400 lines (the converter's op files aside)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hwkit

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def _modules(package: str) -> list[str]:
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        names.append(info.name)
    return sorted(names)


CORE_MODULES = [m for m in _modules("hwkit") if not m.endswith("__main__")]  # __main__ runs the CLI


def _source_files() -> list[Path]:
    files = sorted((ROOT / "hwkit").rglob("*.py"))
    for plugin in sorted((ROOT / "plugins").glob("hwkit-*")):
        files += sorted(p for p in plugin.rglob("*.py") if "tests" not in p.relative_to(plugin).parts)
    return files


def test_import_linter_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("import-linter is a development requirement (requirements-dev.txt); run make setup")
    done = subprocess.run([lint, "pyproject.toml"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("module", CORE_MODULES)
def test_every_module_imports_alone(module):
    """In a fresh interpreter, with warnings as errors: no module relies on another having been
    imported first, and none warns at import."""
    done = subprocess.run([sys.executable, "-W", "error", "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_no_package_binds_the_name_of_one_of_its_submodules():
    clashes = []
    for init in (ROOT / "hwkit").rglob("__init__.py"):
        package = init.parent
        submodules = {p.stem for p in package.glob("*.py") if p.name != "__init__.py"}
        submodules |= {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
        dotted = ".".join(package.relative_to(ROOT).parts)
        for name in sorted(_bound_names(ast.parse(init.read_text()), dotted) & submodules):
            clashes.append(f"{init.relative_to(ROOT)} binds '{name}', also a submodule")
    assert not clashes, "\n".join(clashes)


def _bound_names(tree: ast.Module, package: str) -> set[str]:
    """Names the module binds at top level, except a submodule bound to itself
    (``from hwkit.cli import bench_cmd`` in hwkit/cli/__init__.py)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module == package or (node.level == 1 and not node.module)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def test_the_public_api_is_exactly_all():
    """What ``hwkit`` exports is ``__all__``: nothing missing, nothing extra, no module among it
    (httpx's test_exported_members)."""
    public = {name for name in dir(hwkit) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(hwkit, name)).__name__ == "module"}
    assert set(hwkit.__all__) == public - modules
    assert not set(hwkit.__all__) & modules
    assert hwkit.__all__ == sorted(hwkit.__all__, key=str.lower), "keep __all__ sorted"


def test_the_documented_functions_are_functions_not_modules():
    import hwkit.measure.bench  # noqa: F401 - the modules exist beside the functions
    import hwkit.parity.bisect  # noqa: F401
    import hwkit.parity.check  # noqa: F401

    for name in ("bench", "check", "bisect", "compile", "backends", "open_model"):
        assert callable(getattr(hwkit, name)) and type(getattr(hwkit, name)).__name__ == "function", name


def test_no_module_is_over_400_lines():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in _source_files()
            if "ops" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, "split these by concern:\n" + "\n".join(long)


def test_every_package_says_what_it_owns_and_may_import():
    for init in (ROOT / "hwkit").rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert doc, f"{init.relative_to(ROOT)} has no docstring"
        if init.parent.name in ("model", "measure", "parity", "report", "runner"):
            assert "May import" in doc, f"{init.relative_to(ROOT)} does not say what it may import"
