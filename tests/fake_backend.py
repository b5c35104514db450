"""A backend for tests that needs no runtime: onnx's reference evaluator, optionally perturbed."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import numpy as np
from onnx.reference import ReferenceEvaluator

import hwkit
from hwkit import Backend, BackendOptions, Device, Executable, Model


@dataclasses.dataclass(frozen=True)
class FakeOptions(BackendOptions):
    scale: float = 1.0  # multiply every output, to make a backend that disagrees


class FakeExecutable(Executable):
    def __init__(self, model: Model, device: Device, options: FakeOptions) -> None:
        super().__init__(model, device, options)
        self.evaluator = ReferenceEvaluator(model.proto)
        self.calls = 0

    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        outputs = self.evaluator.run(None, dict(inputs))
        scale = getattr(self.options, "scale", 1.0)
        return {s.name: np.asarray(v * scale if scale != 1.0 else v) for s, v in zip(self.model.outputs, outputs)}


class FakeBackend(Backend):
    name = "fake"
    Options = FakeOptions

    def devices(self) -> list[Device]:
        return [Device("cpu", "cpu", "the reference evaluator")]

    def compile(self, model: Model, device: Device, options: BackendOptions) -> Executable:
        return FakeExecutable(model, device, options)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class TimedOptions(BackendOptions):
    delay: float = 0.002  # seconds each run takes
    first_delay: float = 0.0  # extra seconds on the first run only (a cold start)


class TimedExecutable(FakeExecutable):
    """Runs take a known time, so the statistics can be checked against the truth."""

    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        extra = self.options.first_delay if self.calls == 0 else 0.0  # type: ignore[attr-defined]
        time.sleep(self.options.delay + extra)  # type: ignore[attr-defined]
        return super().execute(inputs)


class DeviceTimedExecutable(TimedExecutable):
    """Offers the device_timer capability, as the cuda backend does with CUDA events."""

    def device_time(self, inputs: Mapping[str, np.ndarray]) -> float:
        return self.options.delay / 2  # type: ignore[attr-defined]


class TimedBackend(FakeBackend):
    name = "timed"
    Options = TimedOptions

    def compile(self, model: Model, device: Device, options: BackendOptions) -> Executable:
        kind = DeviceTimedExecutable if device.name == "gpu" else TimedExecutable
        return kind(model, device, options)  # type: ignore[arg-type]

    def devices(self) -> list[Device]:
        return [Device("cpu", "cpu", "sleeps"), Device("gpu", "gpu", "sleeps, with a device timer")]


class OfflineBackend(Backend):
    name = "offline"

    def unavailable_reason(self) -> str | None:
        return "the offline SDK is not installed"

    def devices(self) -> list[Device]:
        return []

    def compile(self, model: Model, device: Device, options: BackendOptions) -> Executable:
        raise AssertionError("never compiled: unavailable")


@hwkit.hookimpl
def hwkit_register_backends() -> list[type]:
    return [FakeBackend, TimedBackend, OfflineBackend]
