"""hwkit: on which backend and hardware should this model run, how fast, and do they agree?

The public API::

    model = hwkit.Model.builtin("cnn")            # or Model.load("m.onnx"), Model.from_torch(...)
    hwkit.backends()                              # what is installed, with status and devices
    with hwkit.compile(model, "onnxruntime") as exe:
        outputs = exe.run(model.make_inputs())
    result = hwkit.bench(model, ["onnxruntime", "openvino"])
    report = hwkit.check(model)                   # do the backends agree?

This module only re-exports (``__all__``); the packages say what they own: ``hwkit.model`` (the
graph and its inputs), ``hwkit.runner`` (plan and launchers), ``hwkit.measure`` (bench),
``hwkit.parity`` (check, bisect), ``hwkit.report`` (schemas and views), ``hwkit.cli``. Plugin
authors use ``hwkit.backend``, ``hwkit.hookspecs``, ``hwkit.errors``, ``hwkit.system`` and
``hwkit.testing``.
"""

from typing import Any as _Any

from hwkit.api import backends, compile, open_model
from hwkit.backend import Backend, BackendOptions, Device, DeviceTimer, Executable, Precision
from hwkit.errors import (
    BackendNotFoundError,
    BackendOutputError,
    BackendUnavailableError,
    CompileError,
    ExecutionError,
    HwkitError,
    InputMemoryError,
    ModelError,
    OptionError,
    OutputError,
    PluginError,
    ResultError,
    UnsupportedOpError,
)
from hwkit.hookspecs import hookimpl
from hwkit.measure.bench import bench
from hwkit.measure.records import BenchResult
from hwkit.measure.settings import BenchSettings
from hwkit.model import Model, TensorSpec
from hwkit.parity.bisect import BisectReport, bisect
from hwkit.parity.check import CheckSettings, ParityReport, check

__all__ = [
    "Backend",
    "BackendNotFoundError",
    "BackendOptions",
    "BackendOutputError",
    "backends",
    "BackendUnavailableError",
    "bench",
    "BenchResult",
    "BenchSettings",
    "bisect",
    "BisectReport",
    "check",
    "CheckSettings",
    "compile",
    "CompileError",
    "Device",
    "DeviceTimer",
    "Executable",
    "ExecutionError",
    "hookimpl",
    "HwkitError",
    "InputMemoryError",
    "Model",
    "ModelError",
    "open_model",
    "OptionError",
    "OutputError",
    "ParityReport",
    "PluginError",
    "Precision",
    "ResultError",
    "TensorSpec",
    "UnsupportedOpError",
]


def __getattr__(name: str) -> _Any:
    # The version has one source, the package's metadata (pluggy does the same).
    if name == "__version__":
        from hwkit.system import package_version

        return package_version("hwkit") or "0+unknown"
    raise AttributeError(f"module 'hwkit' has no attribute '{name}'")
