"""hwkit plugin: the ``onnxruntime`` backend."""

from __future__ import annotations

from hwkit import hookimpl

from hwkit_onnxruntime.backend import OnnxRuntimeBackend

__all__ = ["OnnxRuntimeBackend"]


@hookimpl
def hwkit_register_backends() -> list[type]:
    return [OnnxRuntimeBackend]
