"""Backends for wire-testing without any runtime (as httpx ships ``MockTransport``): onnx's
reference evaluator behind hwkit's plugin contract.

- ``fake``: runs the graph; ``-o fake.scale=2`` multiplies every output (a backend that
  disagrees), so parity reporting can be tested.
- ``timed``: every run sleeps ``delay`` seconds (``first_delay`` more the first time), so timing
  statistics can be checked against the truth; its device ``gpu`` offers a device timer.
- ``offline``: always unavailable, with a reason.

Use them in a test with ``fake_backends()``::

    from hwkit.testing.backends import fake_backends

    with fake_backends():
        result = hwkit.bench("mlp", ["fake", "timed"])
"""

from __future__ import annotations

import contextlib
import sys
import dataclasses
import time
from collections.abc import Iterator, Mapping
from typing import ClassVar

import numpy as np
from onnx.reference import ReferenceEvaluator

import hwkit
from hwkit import Backend, BackendOptions, Device, Executable, Model
from hwkit.errors import CompileError
from hwkit.plugins import Registry, registry, reset_registry


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
        scale = getattr(self.options, "scale", 1.0)  # TimedOptions has none
        return {s.name: np.asarray(v * scale if scale != 1.0 else v) for s, v in zip(self.model.outputs, outputs)}


class FakeBackend(Backend[BackendOptions]):
    name = "fake"
    Options: ClassVar[type[BackendOptions]] = FakeOptions  # ClassVar: TimedBackend sets another

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
        raise CompileError("the offline backend is never available, so it never compiles")


@hwkit.hookimpl
def hwkit_register_backends() -> list[type[Backend]]:
    return [FakeBackend, TimedBackend, OfflineBackend]


@contextlib.contextmanager
def fake_backends() -> Iterator[Registry]:
    """The process's registry with the installed plugins plus ``fake``, ``timed`` and
    ``offline``, for the duration of the block; the plugins are loaded afresh afterwards."""
    reset_registry()
    current = registry()
    current.register(sys.modules[__name__], "hwkit.testing.backends")
    try:
        yield current
    finally:
        reset_registry()
