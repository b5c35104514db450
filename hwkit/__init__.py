"""hwkit: on which backend and hardware should this model run, how fast, and do they agree?

The public API::

    model = hwkit.Model.builtin("cnn")            # or Model.load("m.onnx"), Model.from_torch(...)
    hwkit.backends()                              # what is installed, with status and devices
    with hwkit.compile(model, "onnxruntime") as exe:
        outputs = exe.run(model.make_inputs())
    result = hwkit.bench(model, ["onnxruntime", "openvino"])
    report = hwkit.check(model)                   # do the backends agree?
    hwkit.bench(model, precisions=["fp32", "bf16", "int8"])   # the precision axis
    hwkit.bench_generate(hwkit.Model.builtin("decoder"))       # LLM prefill + decode, KV cache
    hwkit.merge_results(["a.json", "b.json"])                  # several machines, one table
    hwkit.save_result(result.to_dict())                        # the local results database

This module only re-exports (``__all__``); the packages say what they own: ``hwkit.model`` (the
graph and its inputs), ``hwkit.runner`` (plan and launchers), ``hwkit.measure`` (bench),
``hwkit.parity`` (check, bisect), ``hwkit.generate`` (LLM generation), ``hwkit.fleet`` (merge,
Ray clusters), ``hwkit.store`` (results database), ``hwkit.report`` (schemas and views),
``hwkit.cli``. Plugin
authors use ``hwkit.backend``, ``hwkit.hookspecs``, ``hwkit.errors``, ``hwkit.system`` and
``hwkit.testing``.
"""

from typing import Any as _Any

from hwkit.api import backends, compile, open_model
from hwkit.backend import (
    NATIVE,
    Backend,
    BackendOptions,
    Device,
    DeviceTimer,
    Executable,
    Precision,
    PrecisionSupport,
    StepSession,
    Stepper,
)
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
from hwkit.fleet.cluster import cluster_bench
from hwkit.fleet.merge import merge_results
from hwkit.generate.bench import bench_generate
from hwkit.generate.compare import GenerateCheck, check_generate
from hwkit.generate.records import GenerateResult
from hwkit.generate.settings import GenerateSettings
from hwkit.hookspecs import hookimpl
from hwkit.measure.bench import bench
from hwkit.measure.records import BenchResult
from hwkit.measure.settings import BenchSettings
from hwkit.model import Model, TensorSpec
from hwkit.model.quantize import Quantized, quantize_int8
from hwkit.parity.bisect import BisectReport, bisect
from hwkit.parity.check import CheckSettings, ParityReport, check
from hwkit.store.runs import SavedRun, list_runs, load_run, previous_run, save_result

__all__ = [
    "Backend",
    "BackendNotFoundError",
    "BackendOptions",
    "BackendOutputError",
    "backends",
    "BackendUnavailableError",
    "bench",
    "bench_generate",
    "BenchResult",
    "BenchSettings",
    "bisect",
    "BisectReport",
    "check",
    "check_generate",
    "CheckSettings",
    "cluster_bench",
    "compile",
    "CompileError",
    "Device",
    "DeviceTimer",
    "Executable",
    "ExecutionError",
    "GenerateCheck",
    "GenerateResult",
    "GenerateSettings",
    "hookimpl",
    "HwkitError",
    "InputMemoryError",
    "list_runs",
    "load_run",
    "merge_results",
    "Model",
    "ModelError",
    "NATIVE",
    "open_model",
    "OptionError",
    "OutputError",
    "ParityReport",
    "PluginError",
    "Precision",
    "PrecisionSupport",
    "previous_run",
    "quantize_int8",
    "Quantized",
    "ResultError",
    "save_result",
    "SavedRun",
    "Stepper",
    "StepSession",
    "TensorSpec",
    "UnsupportedOpError",
]


def __getattr__(name: str) -> _Any:
    # The version has one source, the package's metadata (pluggy does the same).
    if name == "__version__":
        from hwkit.system import package_version

        return package_version("hwkit") or "0+unknown"
    raise AttributeError(f"module 'hwkit' has no attribute '{name}'")
