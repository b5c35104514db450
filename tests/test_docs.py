"""The docs keep up with the code: every hook in hwkit.hookspecs is documented in docs/hooks.md."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from hwkit import hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _hookspecs() -> list[str]:
    marker = hookspecs.hookspec.project_name + "_spec"  # the attribute pluggy sets on hookspecs
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, marker)]


def test_there_are_hookspecs() -> None:
    assert "hwkit_register_backends" in _hookspecs()


@pytest.mark.parametrize("hook", _hookspecs())
def test_every_hook_is_documented(hook: str) -> None:
    text = (DOCS / "hooks.md").read_text()
    assert f"## `{hook}`" in text, f"docs/hooks.md has no section '## `{hook}`'; document the hook's signature and contract"
    section = text.split(f"## `{hook}`", 1)[1].split("\n## ", 1)[0]
    assert f"def {hook}(" in section, f"the '{hook}' section of docs/hooks.md shows no signature"


def test_writing_plugins_guide_names_the_tools() -> None:
    text = (DOCS / "writing-plugins.md").read_text()
    for needed in ("[project.entry-points.hwkit]", "BackendConformance", "hwkit backends", "hwkit bench",
                   "scripts/conformance.py", "--hwkit-backend", "UnsupportedOpError"):
        assert needed in text, f"docs/writing-plugins.md does not mention {needed}"


def test_the_architecture_doc_names_every_package_and_top_level_module() -> None:
    text = (DOCS / "architecture.md").read_text()
    core = DOCS.parent / "hwkit"
    names = [p.name for p in core.glob("*.py") if p.name != "__init__.py"]
    names += [f"{p.name}/" for p in core.iterdir() if (p / "__init__.py").exists()]
    missing = [name for name in sorted(names) if name not in text]
    assert not missing, f"docs/architecture.md does not place {missing} in 'Where things live'"


def test_every_row_of_the_errors_doc_has_its_test() -> None:
    """docs/errors.md promises what hwkit says for each row; a test named test_row_NN_ checks it."""
    import re

    rows = {int(n) for n in re.findall(r"^\| (\d+) \|", (DOCS / "errors.md").read_text(), re.M)}
    root = DOCS.parent
    sources = [p for folder in ("tests", "plugins", "examples") for p in (root / folder).rglob("test_*.py")]
    tested = {int(n) for p in sources for n in re.findall(r"def test_row_(\d+)_", p.read_text())}
    assert rows, "docs/errors.md has no numbered rows"
    assert not rows - tested, f"rows without a test_row_NN_ test: {sorted(rows - tested)}"
    assert not tested - rows, f"tests for rows docs/errors.md does not have: {sorted(tested - rows)}"
