"""hwkit: on which backend and hardware should this model run, how fast, and do they agree?

The public API::

    model = hwkit.Model.builtin("cnn")            # or Model.load("m.onnx"), Model.from_torch(...)
    hwkit.backends()                              # what is installed, with status and devices
    with hwkit.compile(model, "onnxruntime") as exe:
        outputs = exe.run(model.make_inputs())
    result = hwkit.bench(model, ["onnxruntime", "openvino"])
"""

from hwkit.api import backends, compile, open_model
from hwkit.measure.bench import BenchResult, BenchSettings, bench
from hwkit.parity.bisect import BisectReport, bisect
from hwkit.parity.check import CheckSettings, ParityReport, check
from hwkit.backend import Backend, BackendOptions, Device, Executable
from hwkit.errors import (
    BackendNotFoundError,
    BackendUnavailableError,
    CompileError,
    ExecutionError,
    HwkitError,
    ModelError,
    OptionError,
    OutputError,
    PluginError,
    UnsupportedOpError,
)
from hwkit.hookspecs import hookimpl
from hwkit.model.model import Model
from hwkit.model.specs import TensorSpec

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendNotFoundError",
    "BackendOptions",
    "BackendUnavailableError",
    "CompileError",
    "Device",
    "Executable",
    "ExecutionError",
    "HwkitError",
    "Model",
    "ModelError",
    "OptionError",
    "OutputError",
    "PluginError",
    "TensorSpec",
    "UnsupportedOpError",
    "BenchResult",
    "BenchSettings",
    "BisectReport",
    "CheckSettings",
    "ParityReport",
    "backends",
    "bench",
    "bisect",
    "check",
    "compile",
    "hookimpl",
    "open_model",
]
