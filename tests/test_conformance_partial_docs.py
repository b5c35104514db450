"""scripts/conformance.py run for some backends only (``--backend``, ``--every``): it rewrites
those backends' rows of docs/conformance.md and keeps every other row, the header and the other
backends' notes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("conformance_script", ROOT / "scripts" / "conformance.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(backend: str, passed: int, cases: int = 1884, through: str = "hwkit") -> dict[str, Any]:
    return {"backend": backend, "through": through, "pass": passed, "mismatch": 0, "unsupported": 0,
            "error": cases - passed, "timeout": 0, "n/a": 0, "cases": cases}


def test_a_partial_run_replaces_only_its_backends_rows(tmp_path: Path) -> None:
    script = _script()
    doc = tmp_path / "conformance.md"
    rows = [_row("onnxruntime", 1737), _row("onnxruntime", 1588, through="runtime directly"), _row("zeta", 5)]
    script.write_docs("Full run, measured 2026-11-28.\n\n" + script.table(rows), doc)
    doc.write_text(doc.read_text() + "\n## Below the table\n")

    script.write_docs(script.merged_block([_row("litert", 100, 189), _row("tensorflow", 90, 189)],
                                          "measured A, every 10-th case", doc), doc)
    script.write_docs(script.merged_block([_row("litert", 120, 189)], "measured B", doc), doc)

    text = doc.read_text()
    block = text.partition(script.BEGIN)[2].partition(script.END)[0]
    assert block.startswith("\nFull run, measured 2026-11-28.\n\n| backend |")
    lines = [ln for ln in block.splitlines() if ln.startswith("| ") and "backend" not in ln]
    assert [ln.split(" | ")[:3] for ln in lines] == [  # sorted by backend, hwkit before the raw runtime
        ["| litert", "hwkit", "120"], ["| onnxruntime", "hwkit", "1737"],
        ["| onnxruntime", "runtime directly", "1588"], ["| tensorflow", "hwkit", "90"], ["| zeta", "hwkit", "5"]]
    notes = [ln for ln in block.splitlines() if ln.startswith("- ")]
    assert notes == ["- `litert`: measured B", "- `tensorflow`: measured A, every 10-th case"]
    assert text.endswith("## Below the table\n")
