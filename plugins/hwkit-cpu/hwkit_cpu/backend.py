"""PyTorch on the CPU, running hwkit's conversion of the ONNX graph."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

from hwkit import Backend, BackendOptions, Device, Executable
from hwkit.system import cpu_name, package_version

if TYPE_CHECKING:
    from hwkit import Model


@dataclasses.dataclass(frozen=True)
class CpuOptions(BackendOptions):
    """Options of the cpu backend.

    Attributes:
        compile: torch.compile mode, or "off" for eager execution of the converted graph.
    """

    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off"


class CpuBackend(Backend):
    """The converted graph, eager or torch.compile'd, on the CPU."""

    name = "cpu"
    Options = CpuOptions
    install_hint = "pip install torch"

    def unavailable_reason(self) -> str | None:
        try:
            import torch  # noqa: F401
        except ImportError as e:
            return f"torch cannot be imported: {e}"
        return None

    def devices(self) -> list[Device]:
        return [Device("cpu", "cpu", cpu_name())]

    def versions(self) -> dict[str, str]:
        return {"torch": package_version("torch") or "?"}

    def compile(self, model: Model, device: Device, options: BackendOptions) -> Executable:
        import torch

        from hwkit.fx.executable import TorchGraphExecutable

        if not isinstance(options, CpuOptions):
            options = CpuOptions(threads=options.threads)
        if options.threads:
            torch.set_num_threads(options.threads)  # per process: bench isolates each backend
        return TorchGraphExecutable(model, device, options, backend=self.name)
