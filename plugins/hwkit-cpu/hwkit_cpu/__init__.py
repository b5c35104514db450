"""hwkit plugin: the ``cpu`` backend (PyTorch on the CPU)."""

from __future__ import annotations

from hwkit import hookimpl

from hwkit_cpu.backend import CpuBackend

__all__ = ["CpuBackend"]


@hookimpl
def hwkit_register_backends() -> list[type]:
    return [CpuBackend]
