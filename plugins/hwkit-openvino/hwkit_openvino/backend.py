"""OpenVINO as a hwkit backend. SDK errors are mapped to hwkit errors in ``_sdk_errors``."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np

from hwkit import Backend, BackendOptions, Device, Executable, Model
from hwkit.backend import Precision, PrecisionSupport
from hwkit.errors import CompileError, ExecutionError, UnsupportedOpError
from hwkit_openvino.generate import OvStepSession

_KINDS = {"CPU": "cpu", "GPU": "gpu", "NPU": "npu"}
_GATHERS = {"Gather", "GatherElements", "GatherND"}
# numpy dtypes OpenVINO's tensor .data cannot express faithfully (bf16 reads back as f16).
_RAW = {"bfloat16": "bf16", "float8_e4m3fn": "f8e4m3", "float8_e5m2": "f8e5m2",  # -> ov.Type attribute
        "float8_e8m0fnu": "f8e8m0", "int4": "i4", "uint4": "u4", "float4_e2m1fn": "f4e2m1"}
# hwkit's precision names -> OpenVINO's element types for INFERENCE_PRECISION_HINT.
_PRECISIONS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}
# Of those, the ones OpenVINO packs two to a byte (ml_dtypes keeps one per byte): bits per element.
_PACKED_BITS = {"int4": 4, "uint4": 4, "float4_e2m1fn": 4}


@dataclasses.dataclass(frozen=True)
class OpenVinoOptions(BackendOptions):
    """Options of the openvino backend.

    Attributes:
        precision: the INFERENCE_PRECISION_HINT, in hwkit's vocabulary (mapped by ``_PRECISIONS``),
            always set: fp32 really is f32, also where OpenVINO would default to bf16 (CPUs with
            AVX512-BF16 or AMX).
        hint: PERFORMANCE_HINT; latency serves one request at a time.
    """

    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    hint: Literal["latency", "throughput"] = "latency"


class OpenVinoBackend(Backend[OpenVinoOptions]):
    """Runs the graph with OpenVINO on each device its Core reports."""

    name = "openvino"
    Options = OpenVinoOptions
    requires = ("openvino",)
    install_hint = "pip install openvino"

    def __init__(self) -> None:
        self._core: Any = None

    @property
    def core(self) -> Any:
        if self._core is None:
            import openvino as ov

            self._core = ov.Core()
        return self._core

    def devices(self) -> list[Device]:
        found = []
        for name in self.core.available_devices:
            kind = _KINDS.get(name.split(".")[0], "other")
            try:
                description = str(self.core.get_property(name, "FULL_DEVICE_NAME"))
            except RuntimeError:
                description = name  # some plugins do not report a full name
            found.append(Device(name, kind, description))  # type: ignore[arg-type]
        return found

    def versions(self) -> dict[str, str]:
        import openvino as ov

        return {"openvino": ov.__version__}

    def precisions(self, device: Device) -> dict[Precision, PrecisionSupport]:
        from hwkit_openvino.precision import declared

        return declared(self.core, device)

    def compile(self, model: Model, device: Device, options: OpenVinoOptions) -> Executable:
        return OpenVinoExecutable(model, device, options, self.core)


class OpenVinoExecutable(Executable):
    def __init__(self, model: Model, device: Device, options: OpenVinoOptions, core: Any) -> None:
        import openvino as ov

        super().__init__(model, device, options)
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _PRECISIONS[options.precision],
            "PERFORMANCE_HINT": options.hint.upper(),
        }
        if options.threads:
            config["INFERENCE_NUM_THREADS"] = options.threads
        # OpenVINO 2026.4 dies with SIGFPE compiling a Gather whose indices input has a static
        # zero-sized axis (found by benchmarks/fuzz_model_load.py): refuse exactly that case, so
        # other empty inputs (which OpenVINO handles) still run.
        empty = {s.name: str(s) for s in model.inputs if s.shape and any(d == 0 for d in s.shape)}
        indices = {n.input[1] for n in model.proto.graph.node
                   if n.op_type in _GATHERS and len(n.input) > 1 and n.input[1] in empty}
        if indices:
            raise CompileError(f"openvino cannot compile '{model.name}' with zero-sized gather indices "
                               f"{', '.join(empty[name] for name in sorted(indices))} (it crashes); "
                               "give the indices a size of at least 1 or use another backend")
        others = [str(spec) for spec in [*model.inputs, *model.outputs] if spec.kind != "tensor"]
        if others:
            raise CompileError(f"openvino takes tensors only, not {', '.join(others)}; use onnxruntime or cpu")
        with _sdk_errors(model, "compile"):
            graph = core.read_model(str(model.path) if model.path else model.serialized)
            self.compiled = core.compile_model(graph, device.name, config)
            self.request = self.compiled.create_infer_request()
        # OpenVINO drops graph inputs that nothing uses: feed by name, only what it kept.
        kept = {name for port in self.compiled.inputs for name in port.get_names()}
        self.fed = [s.name for s in model.inputs if s.name in kept]
        self.ports = []
        for spec in model.outputs:
            port = next((p for p in self.compiled.outputs if spec.name in p.get_names()), None)
            if port is None:
                raise CompileError(f"openvino lost output '{spec.name}' while compiling '{model.name}'")
            self.ports.append((spec.name, spec.dtype, port))
        self._raw_inputs = {s.name: getattr(ov.Type, _RAW[s.dtype]) for s in model.inputs if s.dtype in _RAW}
        self._ov = ov

    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {name: self._tensor(name, inputs[name]) for name in self.fed}
        with _sdk_errors(self.model, "run"):
            results = self.request.infer(feeds, share_inputs=True, share_outputs=True)
        outputs = {}
        for name, dtype, port in self.ports:
            value = results[port]
            if dtype in _RAW:  # .data would reinterpret bf16 as f16: move the raw bytes
                tensor = self.request.get_tensor(port)
                if dtype in _PACKED_BITS:
                    value = _unpack(tensor.data.view(np.uint8).reshape(-1), tuple(tensor.shape), dtype)
                else:
                    value = tensor.data.view(f"uint{8 * np.dtype(dtype).itemsize}").view(dtype)
            outputs[name] = np.array(value, copy=True)  # the request reuses its buffers
        return outputs

    def _tensor(self, name: str, array: np.ndarray) -> Any:
        if name not in self._raw_inputs:
            return array
        tensor = self._ov.Tensor(self._raw_inputs[name], list(array.shape))
        if array.dtype.name in _PACKED_BITS:  # .data is the packed buffer: pack the codes into it
            tensor.data.view(np.uint8).reshape(-1)[...] = _pack(array)
            return tensor
        plain = f"uint{8 * array.itemsize}"  # same-size plain type: copy the bits, not the values
        tensor.data.view(plain)[...] = np.ascontiguousarray(array).view(plain)
        return tensor

    def step_session(self, state: Any, initial: Any, outputs: Any) -> Any:  # hwkit.backend.Stepper
        return OvStepSession(self.compiled, {name: port for name, _, port in self.ports}, self.fed, state, initial,
                             outputs, lambda: _sdk_errors(self.model, "run"))

    def close(self) -> None:
        self.request = None
        self.compiled = None
        super().close()


def _pack(array: np.ndarray) -> np.ndarray:
    """4-bit ml_dtypes values (one per byte) as OpenVINO's packed bytes, first element low."""
    codes = np.ascontiguousarray(array).reshape(-1).view(np.uint8) & 0x0F
    codes = np.pad(codes, (0, codes.size % 2)).reshape(-1, 2)
    return (codes[:, 0] | (codes[:, 1] << 4)).astype(np.uint8)


def _unpack(packed: np.ndarray, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """OpenVINO's packed 4-bit bytes as an ml_dtypes array of ``shape``."""
    count = int(np.prod(shape, dtype=np.int64))
    codes = np.stack([packed & 0x0F, packed >> 4], axis=1).reshape(-1)[:count]
    if dtype == "int4":  # sign-extend to the int8 ml_dtypes keeps int4 in
        codes = np.where(codes >= 8, codes.astype(np.int16) - 16, codes).astype(np.int8)
    return codes.view(dtype).reshape(shape)


@contextlib.contextmanager
def _sdk_errors(model: Model, stage: str) -> Iterator[None]:
    """OpenVINO's exceptions (RuntimeError with a report) -> hwkit's, in one place."""
    try:
        yield
    except (RuntimeError, ValueError, TypeError) as e:
        text = str(e)
        match = re.search(r"No conversion rule found for operations: ([^\n]+)", text)
        if match:
            # OpenVINO names ops with their opset version ("CumProd-26"); strip it, or
            # nodes_by_op finds no node and the error lists none.
            ops = [re.sub(r"-\d+$", "", op.strip()) for op in match.group(1).split(",") if op.strip()]
            raise UnsupportedOpError("openvino", model.nodes_by_op(ops)) from e
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Exception from")]
        summary = " ".join(lines)[:400]
        error = CompileError if stage == "compile" else ExecutionError
        raise error(f"openvino failed to {stage} '{model.name}': {summary}") from e
