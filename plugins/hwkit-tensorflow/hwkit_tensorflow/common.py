"""What the two backends share: the CPU device, the libraries' versions, the install hint."""

from __future__ import annotations

from hwkit import Device
from hwkit.system import cpu_name, package_version

INSTALL_HINT = "hwkit install tensorflow"
# Not dependencies of the distribution (their exact pins conflict with hwkit's numpy/onnx, and
# tf-keras wants `tensorflow`, not `tensorflow-cpu`): `hwkit install tensorflow` adds them.
SEPARATE = {"onnx2tf": "onnx2tf", "tf_keras": "tf-keras"}
CONVERSION_MODULES = ("tensorflow", "onnx2tf", "tf_keras")


def cpu_device() -> Device:
    return Device("CPU", "cpu", cpu_name())


def tensorflow_version() -> str:
    return package_version("tensorflow-cpu") or package_version("tensorflow") or "unknown"


def library_versions() -> dict[str, str]:
    """The libraries a conversion depends on (part of its cache key) and both backends report."""
    return {"tensorflow": tensorflow_version(), "onnx2tf": package_version("onnx2tf") or "unknown",
            "tf-keras": package_version("tf-keras") or "unknown"}


def explain(reason: str | None) -> str | None:
    """``Backend.unavailable_reason``'s answer, saying where onnx2tf and tf-keras come from."""
    if reason and any(reason.startswith(module + " ") for module in SEPARATE):
        return f"{reason}: onnx2tf and tf-keras are installed apart from hwkit-tensorflow's dependencies, with --no-deps"
    return reason
