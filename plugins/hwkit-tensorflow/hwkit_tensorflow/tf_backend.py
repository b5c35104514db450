"""The ``tensorflow`` backend: onnx2tf's conversion as a SavedModel whose signature (a concrete
``tf.function``) runs on the CPU; with ``xla=true`` inside ``tf.function(jit_compile=True)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from hwkit import Backend, BackendOptions, Device, Executable, Model
from hwkit.backend import Precision, PrecisionSupport
from hwkit.errors import CompileError, ExecutionError, first_line

from hwkit_tensorflow import common, convert, threads
from hwkit_tensorflow.convert_worker import SIGNATURE
from hwkit_tensorflow.quiet import import_tensorflow


@dataclasses.dataclass(frozen=True)
class TensorFlowOptions(BackendOptions):
    """Options of the tensorflow backend.

    Attributes:
        xla: compile the function with XLA (``tf.function(jit_compile=True)``); off runs
            TensorFlow's graph executor with its oneDNN kernels.
    """

    xla: bool = False


class TensorFlowBackend(Backend[TensorFlowOptions]):
    """TensorFlow on the CPU, running the SavedModel onnx2tf made of the graph."""

    name = "tensorflow"
    Options = TensorFlowOptions
    requires = common.CONVERSION_MODULES
    install_hint = common.INSTALL_HINT

    def unavailable_reason(self) -> str | None:
        return common.explain(super().unavailable_reason())

    def devices(self) -> list[Device]:
        return [common.cpu_device()]  # tensorflow-cpu: no other device; asked without starting TF

    def versions(self) -> dict[str, str]:
        return common.library_versions()

    def precisions(self, device: Device) -> dict[Precision, PrecisionSupport]:
        from hwkit_tensorflow.precision import tensorflow_support

        return tensorflow_support()

    def compile(self, model: Model, device: Device, options: TensorFlowOptions) -> Executable:
        return TensorFlowExecutable(model, device, options)


class TensorFlowExecutable(Executable):
    def __init__(self, model: Model, device: Device, options: TensorFlowOptions) -> None:
        super().__init__(model, device, options)
        tf = import_tensorflow()

        if options.precision != "fp32":  # precisions() declares no other: the core refuses them first
            raise CompileError(f"tensorflow computes in fp32 only, not {options.precision}")
        threads.apply(tf, options.threads)  # before anything starts TensorFlow's pools
        self.conversion = convert.convert(model, TensorFlowBackend.name)
        try:
            with tf.device("/CPU:0"):
                self._loaded = tf.saved_model.load(str(self.conversion.saved_model))
            signature = self._loaded.signatures[SIGNATURE]
            specs = signature.structured_input_signature[1]
            names = [entry["signature"] for entry in self.conversion.meta["inputs"]]

            def call(*values: Any) -> Any:
                return signature(**dict(zip(names, values)))

            # The signature is already a concrete tf.function: without XLA it is called as it is (a
            # tf.function around it costs ~70 us a call, measured on the built-in mlp).
            self._function = (tf.function(call, input_signature=[specs[n] for n in names], jit_compile=True)
                              if options.xla else call)
        except (KeyError, ValueError, TypeError, OSError, tf.errors.OpError) as e:
            raise CompileError(f"tensorflow could not load the conversion of '{model.name}' from "
                               f"{self.conversion.folder}: {first_line(e)}; delete that folder to convert again") from e
        self._outputs = [(entry["name"], entry["signature"]) for entry in self.conversion.meta["outputs"]]
        self._tf = tf

    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            with self._tf.device("/CPU:0"):
                results = self._function(*[inputs[spec.name] for spec in self.model.inputs])
            return {name: np.asarray(results[key].numpy()) for name, key in self._outputs}
        except (self._tf.errors.OpError, ValueError, TypeError) as e:
            raise ExecutionError(f"tensorflow failed to run '{self.model.name}': {first_line(e)}") from e

    def close(self) -> None:
        self._function = None
        self._loaded = None
        super().close()
