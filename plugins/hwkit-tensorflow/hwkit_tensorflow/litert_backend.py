"""The ``litert`` backend: onnx2tf's conversion as a LiteRT flatbuffer on ai-edge-litert's
interpreter, with the XNNPACK delegate (LiteRT's default CPU delegate)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from hwkit import Backend, BackendOptions, Device, Executable, Model
from hwkit.backend import Precision, PrecisionSupport
from hwkit.errors import CompileError, ExecutionError, first_line

from hwkit_tensorflow import common, convert
from hwkit_tensorflow.convert_worker import SIGNATURE
from hwkit_tensorflow.quiet import stderr_kept

# hwkit's precision -> which flatbuffer runs it (int8 rows compile hwkit's QDQ graph at fp32).
_VARIANTS = {"fp32": "float32", "fp16": "float16"}


@dataclasses.dataclass(frozen=True)
class LiteRtOptions(BackendOptions):
    """Options of the litert backend.

    Attributes:
        xnnpack: apply the XNNPACK delegate (LiteRT's default); off runs LiteRT's builtin
            kernels only (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``).
    """

    xnnpack: bool = True


class LiteRtBackend(Backend[LiteRtOptions]):
    """LiteRT (formerly TFLite) on the CPU, running the .tflite onnx2tf's conversion makes."""

    name = "litert"
    Options = LiteRtOptions
    requires = ("ai_edge_litert", *common.CONVERSION_MODULES)  # TensorFlow converts, LiteRT runs
    install_hint = common.INSTALL_HINT

    def unavailable_reason(self) -> str | None:
        return common.explain(super().unavailable_reason())

    def devices(self) -> list[Device]:
        return [common.cpu_device()]

    def versions(self) -> dict[str, str]:
        from hwkit.system import package_version

        return {**common.library_versions(), "ai-edge-litert": package_version("ai-edge-litert") or "unknown"}

    def precisions(self, device: Device) -> dict[Precision, PrecisionSupport]:
        from hwkit_tensorflow.precision import litert_support

        return litert_support()

    def compile(self, model: Model, device: Device, options: LiteRtOptions) -> Executable:
        return LiteRtExecutable(model, device, options)


class LiteRtExecutable(Executable):
    """Feeds the interpreter's input tensors by index and resizes them only when a shape changes,
    so a timed run is set_tensor + invoke + get_tensor."""

    def __init__(self, model: Model, device: Device, options: LiteRtOptions) -> None:
        super().__init__(model, device, options)
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        variant = _VARIANTS.get(options.precision)
        if variant is None:  # precisions() declares no other: the core refuses them first
            raise CompileError(f"litert runs fp32 and fp16, not {options.precision}")
        self.conversion = convert.convert(model, LiteRtBackend.name, for_litert=True, variants=(variant,))
        self.flatbuffer = convert.tflite(self.conversion, variant, model, LiteRtBackend.name)
        resolver = OpResolverType.AUTO if options.xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            with stderr_kept():  # "INFO: Created TensorFlow Lite XNNPACK delegate": see delegated
                self.interpreter = Interpreter(model_path=str(self.flatbuffer), num_threads=options.threads,
                                               experimental_op_resolver_type=resolver)
                runner = self.interpreter.get_signature_runner(SIGNATURE)
                ins, outs = runner.get_input_details(), runner.get_output_details()
                del runner  # it holds the interpreter, which then refuses to (re)allocate its tensors
                self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            raise CompileError(f"litert could not load {self.flatbuffer}: {first_line(e)}; "
                               "delete that file to convert again") from e
        self._inputs = [(spec.name, ins[entry["signature"]]["index"])
                        for spec, entry in zip(model.inputs, self.conversion.meta["inputs"])]
        self._outputs = [(entry["name"], outs[entry["signature"]]["index"], spec.dtype)
                         for spec, entry in zip(model.outputs, self.conversion.meta["outputs"])]
        self._shapes: dict[int, tuple[int, ...]] = {}
        self.delegated = any(op["op_name"] == "DELEGATE" for op in self.interpreter._get_ops_details())
        """Whether XNNPACK took part of the graph: the interpreter's node list then holds a
        DELEGATE node (LiteRT's Python API has no public query for it)."""

    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        interpreter = self.interpreter
        try:
            resized = False
            for name, index in self._inputs:
                shape = inputs[name].shape
                if self._shapes.get(index) != shape:
                    interpreter.resize_tensor_input(index, list(shape), strict=True)
                    self._shapes[index] = shape
                    resized = True
            if resized:
                interpreter.allocate_tensors()
            for name, index in self._inputs:
                interpreter.set_tensor(index, inputs[name])
            interpreter.invoke()
            return {name: np.asarray(interpreter.get_tensor(index), dtype=dtype)  # get_tensor copies
                    for name, index, dtype in self._outputs}
        except (RuntimeError, ValueError) as e:
            raise ExecutionError(f"litert failed to run '{self.model.name}': {first_line(e)}") from e

    def close(self) -> None:
        self.interpreter = None
        super().close()
