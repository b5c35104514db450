"""Running a converted graph with torch: the Executable both torch plugins (cpu, cuda) share.

The graph is converted once (``hwkit_torch.fx.convert``), optionally wrapped in ``torch.compile``,
and called under ``torch.inference_mode``. Inputs become tensors without a copy where numpy
allows it (bfloat16 / float8 by bit view), and outputs come back as numpy arrays of the
model's declared dtypes.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hwkit.backend import BackendOptions, Device, Executable
from hwkit.errors import CompileError, ExecutionError, HwkitError, ModelError
from hwkit_torch.compiled import compile_graph
from hwkit_torch.fx.converter import convert
from hwkit_torch.generate import TorchStepSession
from hwkit_torch.fx.dtypes import numpy_to_torch, torch_to_numpy
from hwkit_torch.options import CompileMode
from hwkit_torch.specialise import PerShapeModule, needs_shapes

if TYPE_CHECKING:
    from hwkit import Model


class TorchGraphExecutable(Executable):
    """A converted ONNX graph on one torch device.

    Subclasses set the device placement (``torch_device``), and may wrap the call
    (``_forward``) to add autocast, CUDA graphs or device timing.
    """

    torch_device = torch.device("cpu")

    def __init__(self, model: Model, device: Device, options: BackendOptions, backend: str,
                 wrap: Callable[[Any], Any] | None = None) -> None:
        super().__init__(model, device, options)
        self.backend = backend
        self.input_names = [s.name for s in model.inputs]
        declared = {v.name: v.type.tensor_type.elem_type for v in model.proto.graph.output}
        self.output_specs = [(s.name, s.dtype, declared.get(s.name)) for s in model.outputs]
        self._wrap = wrap or (lambda module: module)  # e.g. the cpu backend's autocast
        proto = _with_weights(model)
        mode: CompileMode = getattr(options, "compile", "off")  # cpu and cuda options have it
        # compile=auto: "fast" until its first run settles it (_settle); the graph is kept until then
        self._undecided = proto if mode == "auto" else None
        # The GraphModule, torch.compile's wrapper of it, or a PerShapeModule; None once closed.
        self.module: Any = self._wrap(self._module(proto, "fast" if mode == "auto" else mode))

    def _module(self, proto: Any, mode: CompileMode) -> Any:
        try:
            return self._build(proto, mode)  # raises UnsupportedOpError listing every op
        except HwkitError as e:
            if not needs_shapes(e, proto):
                raise
            # An op needs a dynamic dim's value: convert per input shape, if that works at all.
            per_shape = PerShapeModule(proto, self.input_names, lambda p: self._build(p, mode))
            try:
                defaults = self.model.resolve_shapes()
            except ModelError:  # dims without default sizes: the first run of a shape converts it
                defaults = None
            if defaults is not None:
                try:
                    per_shape.prepare(defaults)
                except HwkitError:
                    raise e from None  # static shapes do not help either: the symbolic conversion's error
            return per_shape

    def _build(self, proto: Any, mode: CompileMode) -> Any:
        graph = convert(proto, backend=self.backend)
        try:
            graph = graph.to(self.torch_device).eval()
        except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
            raise CompileError(f"{self.backend}: cannot place the graph on {self.device.name}: {e}") from e
        return compile_graph(graph, mode, self.torch_device.type, getattr(self.options, "precision", "fp32"),
                             attention=getattr(self.options, "attention", "aten"))  # cuda has no choice

    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = [self._value_to_device(inputs[name]) for name in self.input_names]
        results = self._guarded_forward(tensors, f"running '{self.model.name}'")
        return {name: self._value_to_numpy(t, dtype, elem) for (name, dtype, elem), t in zip(self.output_specs, results)}

    def _guarded_forward(self, tensors: list[Any], what: str) -> tuple[torch.Tensor, ...]:
        """The module on ``tensors``; whatever torch raises at run time (many kinds, all meaning
        that ``what`` failed) becomes one ExecutionError naming the backend."""
        try:
            with torch.inference_mode():
                result = self._forward(tensors)
        except HwkitError:
            raise
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            if self._undecided is None:
                raise ExecutionError(f"{self.backend}: {what} failed: {type(e).__name__}: {first}") from e
            # compile=auto: torch.compile could not take the graph (data-dependent shapes, no C++
            # compiler, ...): eager from now on, said in a warning and in the options
            warnings.warn(f"{self.backend}: compile=auto runs '{self.model.name}' eagerly: torch.compile failed on "
                          f"its first run: {type(e).__name__}: {first}", stacklevel=2)
            self.module = self._wrap(self._module(self._undecided, "off"))
            self._settle("off")
            return self._guarded_forward(tensors, what)
        if self._undecided is not None:
            self._settle("fast")
        return result

    def _settle(self, mode: CompileMode) -> None:
        """compile=auto's choice, made on the first run, in the options the records show."""
        self._undecided = None
        self.options = dataclasses.replace(self.options, compile=mode)  # type: ignore[call-arg]

    def _forward(self, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return self.module(*tensors)

    def _value_to_device(self, value: Any) -> Any:
        """A tensor, a list of tensors (sequence input) or None (absent optional)."""
        if value is None:
            return None
        if isinstance(value, list):
            return [self._to_device(item) for item in value]
        return self._to_device(value)

    def _value_to_numpy(self, value: Any, dtype: str, elem_type: int | None) -> Any:
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            return [self._to_numpy(item, dtype, None) for item in value]
        return self._to_numpy(value, dtype, elem_type)

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        if array.dtype.kind in "biuf" and array.dtype.name in _PLAIN and array.flags.writeable:
            tensor = torch.from_numpy(array)  # no copy: the bench's arrays are not touched elsewhere
        else:
            tensor = numpy_to_torch(array)
        return tensor.to(self.torch_device, non_blocking=True) if self.torch_device.type != "cpu" else tensor

    @staticmethod
    def _to_numpy(tensor: torch.Tensor, dtype: str, elem_type: int | None) -> np.ndarray:
        # elem_type lets sub-byte carriers (int4 in int8, float4 in float32) come back as declared.
        array = torch_to_numpy(tensor, elem_type)
        return array if array.dtype.name == dtype else array.astype(dtype)

    def step_session(self, state: Any, initial: Any, outputs: Any) -> Any:  # hwkit.backend.Stepper
        return TorchStepSession(self, state, initial, outputs)

    def close(self) -> None:
        self.module = None
        super().close()


def _with_weights(model: Model) -> Any:
    """The graph with every weight in memory: over 1 GiB, Model keeps external data in its files."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    if model.path is None or not any(uses_external_data(t) for t in model.proto.graph.initializer):
        return model.proto
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    load_external_data_for_model(proto, str(model.path.parent))  # locations were checked on load
    return proto


_PLAIN = {"bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64"}
