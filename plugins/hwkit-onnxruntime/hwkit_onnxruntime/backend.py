"""ONNX Runtime as a hwkit backend. SDK errors are mapped to hwkit errors in ``_sdk_errors``."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np

from hwkit import Backend, BackendOptions, Device, Executable, Model
from hwkit.errors import BackendUnavailableError, CompileError, ExecutionError, ModelError, UnsupportedOpError
from hwkit.system import cpu_name

# Execution provider -> the device prefix users type ("onnxruntime:cuda:0").
PROVIDERS = {
    "CPUExecutionProvider": ("cpu", "cpu"),
    "CUDAExecutionProvider": ("cuda:0", "gpu"),
    "TensorrtExecutionProvider": ("tensorrt:0", "gpu"),
    "ROCMExecutionProvider": ("rocm:0", "gpu"),
    "MIGraphXExecutionProvider": ("migraphx:0", "gpu"),
    "DmlExecutionProvider": ("dml:0", "gpu"),
    "CoreMLExecutionProvider": ("coreml", "npu"),
    "OpenVINOExecutionProvider": ("openvino", "other"),
    "QNNExecutionProvider": ("qnn", "npu"),
}
# Domains whose ops ONNX Runtime implements; a node in another domain cannot run.
KNOWN_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc", "ai.onnx.preview.training"}
# Element types InferenceSession.run cannot take as numpy arrays (moved as raw bytes instead).
RAW_DTYPES = {"bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "int4", "uint4"}
_OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
               "extended": "ORT_ENABLE_EXTENDED", "layout": "ORT_ENABLE_LAYOUT", "all": "ORT_ENABLE_ALL"}


@dataclasses.dataclass(frozen=True)
class OnnxRuntimeOptions(BackendOptions):
    """Options of the onnxruntime backend.

    Attributes:
        optimization: graph optimisation level.
        spinning: whether idle intra-op threads spin-wait (lower latency, more CPU).
    """

    optimization: Literal["disable", "basic", "extended", "layout", "all"] = "all"
    spinning: bool = True


class OnnxRuntimeBackend(Backend):
    """Runs the graph with ONNX Runtime on the execution providers it offers."""

    name = "onnxruntime"
    Options = OnnxRuntimeOptions
    install_hint = "pip install onnxruntime (or onnxruntime-gpu)"

    def unavailable_reason(self) -> str | None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:
            return f"onnxruntime cannot be imported: {e}"
        return None

    def devices(self) -> list[Device]:
        import onnxruntime as ort

        found = []
        for provider in ort.get_available_providers():
            if provider in PROVIDERS:
                name, kind = PROVIDERS[provider]
                found.append(Device(name, kind, cpu_name() if kind == "cpu" else provider))  # type: ignore[arg-type]
        # The CPU provider is always last in ORT's list; users expect it as the default here.
        return sorted(found, key=lambda d: d.kind != "cpu")

    def versions(self) -> dict[str, str]:
        import onnxruntime as ort

        return {"onnxruntime": ort.__version__}

    def compile(self, model: Model, device: Device, options: BackendOptions) -> Executable:
        if not isinstance(options, OnnxRuntimeOptions):
            options = OnnxRuntimeOptions(threads=options.threads)
        return OnnxRuntimeExecutable(model, device, options)


class OnnxRuntimeExecutable(Executable):
    def __init__(self, model: Model, device: Device, options: OnnxRuntimeOptions) -> None:
        import onnxruntime as ort

        super().__init__(model, device, options)
        provider = next(p for p, (name, _) in PROVIDERS.items() if name == device.name)
        so = ort.SessionOptions()
        so.log_severity_level = 3  # warnings go to hwkit's own reporting, not the terminal
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _OPT_LEVELS[options.optimization])
        so.intra_op_num_threads = options.threads or 0
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spinning else "0")
        providers = [provider]
        if provider != "CPUExecutionProvider":
            # Refuse ORT's silent fallback: a node the provider cannot take must fail loudly.
            so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        foreign = sorted({f"{n.domain}.{n.op_type}" for n in model.proto.graph.node if n.domain not in KNOWN_DOMAINS})
        if foreign:
            raise UnsupportedOpError("onnxruntime", model.nodes_by_op(foreign))
        source: Any = str(model.path) if model.path else model.serialized
        with _sdk_errors(model, "compile"):
            self.session = ort.InferenceSession(source, sess_options=so, providers=providers)
        used = self.session.get_providers()
        if not used or used[0] != provider:
            raise BackendUnavailableError(
                f"onnxruntime gave {used[0] if used else 'no provider'} instead of {provider}; "
                "refusing to measure a silent fallback (is onnxruntime-gpu installed and the driver working?)"
            )
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._raw = any(s.dtype in RAW_DTYPES for s in [*model.inputs, *model.outputs])
        self._ort = ort

    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._raw:
            return self._execute_raw(inputs)
        with _sdk_errors(self.model, "run"):
            results = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, results))

    def _execute_raw(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Inputs and outputs as OrtValues of raw bytes, for element types numpy run() cannot take."""
        ort = self._ort
        with _sdk_errors(self.model, "run"):
            feeds = {}
            for spec in self.model.inputs:
                array = np.ascontiguousarray(inputs[spec.name])
                if spec.dtype in RAW_DTYPES:
                    value = ort.OrtValue.ortvalue_from_shape_and_type(array.shape, _onnx_type(spec.dtype))
                    value.update_inplace(array.view(f"uint{8 * array.itemsize}"))  # same size, plain type
                else:
                    value = ort.OrtValue.ortvalue_from_numpy(array)
                feeds[spec.name] = value
            results = self.session.run_with_ort_values(self.output_names, feeds)
            outputs = {}
            for spec, value in zip(self.model.outputs, results):
                if spec.dtype in RAW_DTYPES:
                    shape = tuple(value.shape())
                    outputs[spec.name] = np.frombuffer(bytes(_raw_bytes(value)), dtype=spec.dtype).reshape(shape)
                else:
                    outputs[spec.name] = value.numpy()
        return outputs

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
        super().close()


def _onnx_type(dtype: str) -> int:
    import onnx

    return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


def _raw_bytes(value: Any) -> memoryview:
    # An OrtValue of a non-numpy type still exposes its buffer through numpy() as raw uint16/uint8.
    return memoryview(np.ascontiguousarray(value.numpy()).view(np.uint8))


@contextlib.contextmanager
def _sdk_errors(model: Model, stage: str) -> Iterator[None]:
    """ONNX Runtime's exceptions -> hwkit's, in one place."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    try:
        yield
    except (state.NotImplemented, state.Fail, state.InvalidGraph, state.InvalidArgument,
            state.RuntimeException, state.InvalidProtobuf, state.NoModel, state.EPFail,
            RuntimeError, ValueError) as e:
        text = str(e).strip().replace("\n", " ")
        missing = re.findall(r"Could not find an implementation for (\w+)\(\d+\) node with name '([^']*)'", text)
        if missing:
            ops: dict[str, list[str]] = {}
            for op, node in missing:
                ops.setdefault(op, []).append(node)
            raise UnsupportedOpError("onnxruntime", ops) from e
        if stage == "run" and isinstance(e, state.InvalidArgument):
            raise ModelError(f"onnxruntime rejected the inputs: {text[:300]}") from e
        error = CompileError if stage == "compile" else ExecutionError
        raise error(f"onnxruntime failed to {stage} '{model.name}': {text[:400]}") from e
