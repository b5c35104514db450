"""hwkit plugin: the ``cuda`` backend (PyTorch on NVIDIA GPUs)."""

from __future__ import annotations

from hwkit import hookimpl

from hwkit_cuda.backend import CudaBackend

__all__ = ["CudaBackend"]


@hookimpl
def hwkit_register_backends() -> list[type]:
    return [CudaBackend]
