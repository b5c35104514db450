"""What machine and software a result was measured on (its fingerprint)."""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import os
import platform
import sys
from typing import Any

import psutil


@functools.cache
def cpu_name() -> str:
    """The processor's marketing name, as well as the OS tells it."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass  # unreadable /proc: fall through to platform's answer
    return platform.processor() or platform.machine()


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def usable_cores() -> int:
    """Logical cores this process may run on (its CPU affinity where the OS has one)."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return len(affinity) if affinity is not None else (psutil.cpu_count(logical=True) or 1)


def fingerprint() -> dict[str, Any]:
    """The machine and core software: enough to tell whether two results are comparable.

    Computed once per process (every view of a result asks for it; the package lookups scan
    sys.path) and handed out as a copy."""
    return copy.deepcopy(_fingerprint())


@functools.cache
def _fingerprint() -> dict[str, Any]:
    versions = {name: package_version(name) for name in ("hwkit", "numpy", "onnx", "torch", "onnxruntime", "openvino")}
    return {
        "cpu": cpu_name(),
        "machine": platform.machine(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "usable_cores": usable_cores(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: version for name, version in versions.items() if version},
    }
