"""A fixed-seed sample of benchmarks/fuzz_model_load.py: mutated ONNX bytes never make
Model.load or a backend's compile raise anything but a hwkit error, crash or hang."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_model_load.py"


def load_fuzzer(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    # An importable module (not exec'd from a path): the spawned workers import it by name,
    # with the parent's sys.path.
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return importlib.import_module(SCRIPT.stem)


@pytest.mark.slow
def test_fuzz_sample_only_hwkit_errors_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    fuzz = load_fuzzer(monkeypatch)
    # The small seeds only (mlp and the hand-built graphs): the big built-ins take seconds each.
    # Not tensorflow/litert: each of their compiles converts in a child (3-5 s), 100 s for the
    # sample; `python benchmarks/fuzz_model_load.py --backends tensorflow,litert` fuzzes them.
    quick = [b for b in fuzz.available_backends() if b not in ("tensorflow", "litert")]
    summary = fuzz.fuzz(200, seed=20_261_128, workers=2, builtins=("mlp",), timeout=60, backends=quick)
    assert summary["non_hwkit_exceptions"] == 0, summary["findings"]
    assert summary["crashes"] == 0 and summary["hangs"] == 0, summary["findings"]
    assert sum(summary["rejected_by_load"].values()) + summary["loaded"] == 200
    assert summary["loaded"] >= 5 and set(summary["rejected_by_load"]) == {"ModelError"}
    compiled = summary["compile"]["onnxruntime"]
    assert sum(compiled.values()) == summary["loaded"] and compiled.get("ok", 0) >= 1
