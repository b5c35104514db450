"""Backends for the precision tests, on onnx's reference evaluator (no runtime needed):

- ``exact`` declares fp32 and bf16 natively (it rounds its outputs to bf16 there, a known
  accuracy cost), fp16 unsupported with a reason, int8 emulated;
- ``plain`` declares nothing: the base class's default (fp32 only);
- ``liar`` raises from ``precisions``; ``typo`` declares a precision as a bare string.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import ml_dtypes
import numpy as np
from onnx.reference import ReferenceEvaluator

import hwkit
from hwkit import Backend, BackendOptions, Device, Executable, Model
from hwkit.backend import NATIVE, PrecisionSupport

COMPILED: list[tuple[str, str, str]] = []  # (backend, options.precision, graph name) of each compile


class ReferenceExecutable(Executable):
    def __init__(self, model: Model, device: Device, options: BackendOptions) -> None:
        super().__init__(model, device, options)
        self.evaluator = ReferenceEvaluator(model.proto)

    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.evaluator.run(None, dict(inputs))
        if self.options.precision == "bf16":  # what computing in bf16 would cost, roughly
            outputs = [np.asarray(o).astype(ml_dtypes.bfloat16).astype(np.float32) for o in outputs]
        return {s.name: np.asarray(v) for s, v in zip(self.model.outputs, outputs)}


class PlainBackend(Backend[BackendOptions]):
    name = "plain"

    def devices(self) -> list[Device]:
        return [Device("cpu", "cpu", "the reference evaluator")]

    def compile(self, model: Model, device: Device, options: BackendOptions) -> Executable:
        COMPILED.append((self.name, options.precision, model.proto.graph.name))
        return ReferenceExecutable(model, device, options)


class ExactBackend(PlainBackend):
    name = "exact"

    def precisions(self, device: Device) -> dict[str, PrecisionSupport]:  # type: ignore[override]
        return {"fp32": NATIVE, "bf16": NATIVE, "fp16": PrecisionSupport(unsupported="no fp16 here, by design"),
                "int8": PrecisionSupport(emulated="the reference evaluator dequantises")}


class LiarBackend(PlainBackend):
    name = "liar"

    def precisions(self, device: Device) -> dict[str, PrecisionSupport]:  # type: ignore[override]
        raise RuntimeError("cannot tell")


class TypoBackend(PlainBackend):
    name = "typo"

    def precisions(self, device: Device) -> dict[str, object]:  # type: ignore[override]
        return {"fp32": NATIVE, "bf16": "yes"}


@hwkit.hookimpl
def hwkit_register_backends() -> list[type[Backend]]:
    return [PlainBackend, ExactBackend, LiarBackend, TypoBackend]


@dataclasses.dataclass(frozen=True)
class FakeQuantized:
    model: Model
    settings: dict[str, object]


def fake_quantize_int8(model: Model, **kwargs: object) -> FakeQuantized:
    """Stands in for hwkit.model.quantize.quantize_int8: the graph unchanged, renamed."""
    proto = model.proto.__class__()
    proto.CopyFrom(model.proto)
    proto.graph.name = "int8"
    quantized = Model.load(proto)
    return FakeQuantized(quantized, {"quantiser": "fake", "calibration": str(kwargs.get("calibration"))})
