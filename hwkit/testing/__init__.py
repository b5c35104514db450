"""Tools for testing hwkit backends: the conformance kit and the ONNX backend adapter.

``BackendConformance`` is the pytest class a plugin's tests subclass with one line
(``class TestMine(BackendConformance): backend = "mine"``); ``pytest --pyargs hwkit.testing.suite
--hwkit-backend NAME`` runs the same checks against any installed backend.
``hwkit.testing.onnx_backend.make_onnx_backend`` exposes a backend to ONNX's own test suite.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BackendConformance", "assert_outputs_match", "reference_outputs", "require_backend", "small_graphs"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the kit needs pytest, which hwkit does not depend on, and the ONNX
    # adapter (hwkit.testing.onnx_backend) must import without it.
    if name in __all__:
        from hwkit.testing import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module 'hwkit.testing' has no attribute '{name}'")
