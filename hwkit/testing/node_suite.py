"""ONNX's backend node test cases (``onnx.backend.test``), built once per process.

Shared by the converter's runner (``scripts/conformance_fx.py``) and the every-backend runner
(``scripts/conformance.py``): onnx ≥ 1.23 builds its 1884 node cases in memory.
"""

from __future__ import annotations

import warnings
from typing import Any

CASES: dict[str, Any] = {}  # filled once; forked workers inherit it


def load_cases() -> dict[str, Any]:
    """All node test cases by name (~10 s the first time)."""
    if not CASES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the loader warns about cases it skips
            from onnx.backend.test.loader import load_model_tests

            for case in load_model_tests(kind="node"):
                CASES[case.name] = case
    return CASES
