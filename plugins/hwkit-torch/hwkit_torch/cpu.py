"""The ``cpu`` backend: PyTorch on the CPU, running hwkit's conversion of the ONNX graph.

Entry point of the ``cpu`` plugin. Imports no torch: torch and the converter are imported when
a model is compiled, so that without torch the backend is listed as unavailable, with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from hwkit import Backend, BackendOptions, Device, Executable, hookimpl
from hwkit.backend import Precision, PrecisionSupport
from hwkit.system import cpu_name, package_version

from hwkit_torch.options import AttentionKernel, CompileMode
from hwkit_torch.precision import declared

if TYPE_CHECKING:
    from hwkit import Model

__all__ = ["CpuBackend", "CpuOptions"]


@dataclasses.dataclass(frozen=True)
class CpuOptions(BackendOptions):
    """Options of the cpu backend.

    Attributes:
        compile: "off" (eager), "fast" (Inductor with freezing: docs/torch-backends.md) or a
            torch.compile mode; compiled graphs are compiled within compile(). "auto" (a
            bench's value) is "fast" where torch.compile takes the graph, else eager.
        attention: the kernel of fp32 attention: "hwkit" (hwkit's own, faster on AMD CPUs; ATen's
            where it cannot be built, with a warning) or "aten" (torch's).
    """

    compile: CompileMode = "off"
    attention: AttentionKernel = "hwkit"

    # A bench times torch compiled (docs/torch-backends.md, "Should fast be the default?"): its
    # compile time has a column of its own, and eager stays where one run is all (check, the API).
    timing_defaults: ClassVar[Mapping[str, Any]] = {"compile": "auto"}


class CpuBackend(Backend[CpuOptions]):
    """The converted graph, eager or torch.compile'd, on the CPU."""

    name = "cpu"
    Options = CpuOptions
    requires = ("torch",)
    install_hint = "pip install torch"

    def devices(self) -> list[Device]:
        return [Device("cpu", "cpu", cpu_name())]

    def versions(self) -> dict[str, str]:
        return {"torch": package_version("torch") or "?"}

    def precisions(self, device: Device) -> dict[Precision, PrecisionSupport]:
        return declared(device.kind)

    def compile(self, model: Model, device: Device, options: CpuOptions) -> Executable:
        import torch

        from hwkit_torch.executable import TorchGraphExecutable
        from hwkit_torch.precision import with_precision

        if options.threads:
            torch.set_num_threads(options.threads)  # per process: bench isolates each backend
        executable = TorchGraphExecutable(model, device, options, backend=self.name,
                                          wrap=lambda module: with_precision(module, "cpu", options.precision))
        if options.compile != "off":
            from hwkit_torch.compiled import warm_up

            warm_up(executable, model)  # torch.compile compiles on a first call: now, in compile_s
        return executable


@hookimpl
def hwkit_register_backends() -> list[type]:
    return [CpuBackend]
