"""ONNX Runtime as a hwkit backend. SDK errors are mapped to hwkit errors in ``_sdk_errors``."""

from __future__ import annotations

import contextlib
import functools
import ctypes
import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np

from hwkit import Backend, BackendOptions, Device, Executable, Model
from hwkit.backend import NATIVE, Precision, PrecisionSupport, refuse_unknown_domains
from hwkit.errors import BackendUnavailableError, CompileError, ExecutionError, ModelError, UnsupportedOpError
from hwkit.system import cpu_name
from hwkit_onnxruntime.generate import OrtStepSession

# Execution provider -> the device prefix users type ("onnxruntime:cuda:0") and the device's kind.
PROVIDERS: dict[str, tuple[str, Literal["cpu", "gpu", "npu", "other"]]] = {
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
RAW_DTYPES = {"bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
              "int4", "uint4", "float4_e2m1fn", "int2", "uint2"}
# Of those, the ones ORT packs several to a byte (ml_dtypes keeps one per byte): bits per element.
PACKED_BITS = {"int4": 4, "uint4": 4, "float4_e2m1fn": 4, "int2": 2, "uint2": 2}
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


class OnnxRuntimeBackend(Backend[OnnxRuntimeOptions]):
    """Runs the graph with ONNX Runtime on the execution providers it offers."""

    name = "onnxruntime"
    Options = OnnxRuntimeOptions
    requires = ("onnxruntime",)
    install_hint = "pip install onnxruntime (or onnxruntime-gpu)"

    def devices(self) -> list[Device]:
        import onnxruntime as ort

        found = []
        for provider in ort.get_available_providers():
            if provider in PROVIDERS:
                name, kind = PROVIDERS[provider]
                found.append(Device(name, kind, cpu_name() if kind == "cpu" else provider))
        # The CPU provider is always last in ORT's list; users expect it as the default here.
        return sorted(found, key=lambda d: d.kind != "cpu")

    def versions(self) -> dict[str, str]:
        import onnxruntime as ort

        return {"onnxruntime": ort.__version__}

    def precisions(self, device: Device) -> dict[Precision, PrecisionSupport]:
        from hwkit_onnxruntime.precision import declared

        return declared(device)

    def compile(self, model: Model, device: Device, options: OnnxRuntimeOptions) -> Executable:
        return OnnxRuntimeExecutable(model, device, options)


class OnnxRuntimeExecutable(Executable):
    def __init__(self, model: Model, device: Device, options: OnnxRuntimeOptions) -> None:
        import onnxruntime as ort

        super().__init__(model, device, options)
        provider = next((p for p, (name, _) in PROVIDERS.items() if name == device.name), None)
        if provider is None:  # a Device that is not one of ours: hwkit.compile checks first; say it here too
            raise BackendUnavailableError(f"onnxruntime has no device {device.name!r}; its devices: "
                              + ", ".join(name for name, _ in PROVIDERS.values()))
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
        refuse_unknown_domains(model, "onnxruntime", KNOWN_DOMAINS)
        source: Any = str(model.path) if model.path else model.serialized
        if options.precision == "fp16":  # declared only for providers with fp16 kernels
            from hwkit_onnxruntime.precision import to_fp16

            source = to_fp16(model)
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
        try:  # try/except, not the context manager: this is the timed path, every µs shows
            results = self.session.run(self.output_names, inputs)
        except _sdk_exceptions() as e:
            raise _translate(e, self.model, "run") from e
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
                    _copy_in(value, array, spec.dtype)
                else:
                    value = ort.OrtValue.ortvalue_from_numpy(array)
                feeds[spec.name] = value
            results = self.session.run_with_ort_values(self.output_names, feeds)
            outputs = {}
            for spec, value in zip(self.model.outputs, results):
                if spec.dtype in RAW_DTYPES:
                    outputs[spec.name] = _copy_out(value, spec.dtype)
                else:
                    outputs[spec.name] = value.numpy()
        return outputs

    def step_session(self, state: Any, initial: Any, outputs: Any) -> Any:  # hwkit.backend.Stepper
        return OrtStepSession(self.session, self.device.name, state, initial, outputs, _sdk_exceptions(),
                              lambda e: _translate(e, self.model, "run"))

    def close(self) -> None:
        self.session = None
        super().close()


def _onnx_type(dtype: str) -> int:
    import onnx

    return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


# OrtValue.numpy() and update_inplace() refuse the element types numpy lacks (onnxruntime 1.2x:
# "No corresponding Numpy type for Tensor Type. bfloat16"), so the bytes are copied through
# data_ptr(); sub-byte types are (un)packed, ORT storing the first element in the low bits.

def _copy_in(value: Any, array: np.ndarray, dtype: str) -> None:
    """Write ``array`` (an ml_dtypes array) into the OrtValue ``value`` of the same type and shape."""
    codes = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    bits = PACKED_BITS.get(dtype)
    if bits:
        per_byte = 8 // bits
        groups = np.pad(codes & ((1 << bits) - 1), (0, -codes.size % per_byte)).reshape(-1, per_byte)
        codes = np.bitwise_or.reduce(groups << (bits * np.arange(per_byte, dtype=np.uint8)), axis=1).astype(np.uint8)
    if codes.size:
        ctypes.memmove(value.data_ptr(), codes.ctypes.data, codes.nbytes)


def _copy_out(value: Any, dtype: str) -> np.ndarray:
    """The OrtValue ``value`` as a numpy array of the ml_dtypes type ``dtype``."""
    shape = tuple(value.shape())
    count = int(np.prod(shape, dtype=np.int64))
    bits = PACKED_BITS.get(dtype)
    if not bits:
        out = np.empty(shape, dtype=dtype)
        if count:
            ctypes.memmove(out.ctypes.data, value.data_ptr(), out.nbytes)
        return out
    per_byte = 8 // bits
    packed = np.empty(-(-count // per_byte), np.uint8)
    if count:
        ctypes.memmove(packed.ctypes.data, value.data_ptr(), packed.nbytes)
    codes = ((packed[:, None] >> (bits * np.arange(per_byte, dtype=np.uint8))) & ((1 << bits) - 1)).reshape(-1)[:count]
    if dtype in ("int4", "int2"):  # sign-extend to the int8 ml_dtypes keeps them in
        codes = np.where(codes >= 1 << (bits - 1), codes.astype(np.int16) - (1 << bits), codes).astype(np.int8)
    return codes.view(dtype).reshape(shape)


@functools.cache
def _sdk_exceptions() -> tuple[type[BaseException], ...]:
    """What ONNX Runtime raises for a bad model, bad inputs or a failed run."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return (state.NotImplemented, state.Fail, state.InvalidGraph, state.InvalidArgument,
            state.RuntimeException, state.InvalidProtobuf, state.NoModel, state.EPFail,
            RuntimeError, ValueError)


@contextlib.contextmanager
def _sdk_errors(model: Model, stage: str) -> Iterator[None]:
    """ONNX Runtime's exceptions -> hwkit's (see ``_translate``)."""
    try:
        yield
    except _sdk_exceptions() as e:
        raise _translate(e, model, stage) from e


def _translate(error: BaseException, model: Model, stage: str) -> Exception:
    """The hwkit error for one of ONNX Runtime's, in one place."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    text = str(error).strip().replace("\n", " ")
    missing = re.findall(r"Could not find an implementation for (\w+)\(\d+\) node with name '([^']*)'", text)
    # The same lack, worded differently when a kernel exists for other types or versions.
    missing += re.findall(r"Failed to find kernel for (\w+)\(\d+\) \(node:'([^']*)'", text)
    if missing:
        ops: dict[str, list[str]] = {}
        for op, node in missing:
            ops.setdefault(op, []).append(node)
        return UnsupportedOpError("onnxruntime", ops)
    if stage == "run" and isinstance(error, state.InvalidArgument):
        return ModelError(f"onnxruntime rejected the inputs: {text[:300]}")
    kind = CompileError if stage == "compile" else ExecutionError
    return kind(f"onnxruntime failed to {stage} '{model.name}': {text[:400]}")
