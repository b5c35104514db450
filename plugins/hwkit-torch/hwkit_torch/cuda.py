"""The ``cuda`` backend: PyTorch on NVIDIA GPUs, running hwkit's conversion of the ONNX graph.

Entry point of the ``cuda`` plugin. Imports no torch: torch and the converter are imported inside
methods, so that without torch (or without a GPU) the backend is listed as unavailable, with the
reason, instead of failing to load.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hwkit import Backend, BackendOptions, Device, Executable, hookimpl
from hwkit.backend import Precision, PrecisionSupport
from hwkit.errors import ExecutionError
from hwkit.system import package_version

from hwkit_torch.options import CompileMode
from hwkit_torch.precision import declared

if TYPE_CHECKING:
    from hwkit import Model

__all__ = ["CudaBackend", "CudaOptions"]


@dataclasses.dataclass(frozen=True)
class CudaOptions(BackendOptions):
    """Options of the cuda backend (see the plugin's README).

    Attributes:
        precision: autocast dtype; the part of hwkit's ``Precision`` vocabulary torch autocasts to.
        tf32: allow TF32 tensor cores for fp32 matmuls and convolutions.
        compile: "off" (eager), "fast" (Inductor with freezing and CUDA graphs:
            docs/torch-backends.md) or a torch.compile mode; compiled within compile().
        cuda_graphs: capture the graph once per input signature and replay it (for eager runs;
            "fast" and "reduce-overhead" already replay CUDA graphs).
    """

    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    tf32: bool = False
    compile: CompileMode = "off"
    cuda_graphs: bool = False


class CudaBackend(Backend[CudaOptions]):
    """The converted graph on an NVIDIA GPU."""

    name = "cuda"
    Options = CudaOptions
    requires = ("torch",)
    install_hint = "install a CUDA build of torch and the NVIDIA driver"

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason:
            return reason
        try:
            import torch
        except (ImportError, OSError) as e:  # installed but broken (e.g. a missing CUDA library)
            return f"torch cannot be imported: {type(e).__name__}: {e}"
        if torch.version.cuda is None:
            return f"torch {torch.__version__} is a CPU-only build"
        if not torch.cuda.is_available():
            return f"no usable NVIDIA GPU (torch {torch.__version__}, CUDA {torch.version.cuda}: driver or device missing)"
        return None

    def devices(self) -> list[Device]:
        import torch

        return [Device(f"cuda:{i}", "gpu", torch.cuda.get_device_name(i)) for i in range(torch.cuda.device_count())]

    def versions(self) -> dict[str, str]:
        import torch

        return {"torch": package_version("torch") or "?", "cuda": str(torch.version.cuda),
                "cudnn": str(torch.backends.cudnn.version())}

    def precisions(self, device: Device) -> dict[Precision, PrecisionSupport]:
        import torch

        return declared("gpu", bf16=torch.cuda.is_bf16_supported())  # fp16 / bf16: its autocast below

    def compile(self, model: Model, device: Device, options: CudaOptions) -> Executable:
        executable = _make_executable(model, device, options)
        if options.compile != "off":
            from hwkit_torch.compiled import warm_up

            warm_up(executable, model)  # torch.compile compiles on a first call: now, in compile_s
        return executable


@hookimpl
def hwkit_register_backends() -> list[type]:
    return [CudaBackend]


def _make_executable(model: Model, device: Device, options: CudaOptions) -> Executable:
    # Imported here: the executable and the converter import torch, which an unavailable backend
    # must not need.
    import torch

    from hwkit_torch.executable import TorchGraphExecutable

    class CudaExecutable(TorchGraphExecutable):
        """Inputs copied to the GPU and outputs back inside each timed run (the copies are timed)."""

        torch_device = torch.device(device.name)

        def __init__(self) -> None:
            if options.threads:
                torch.set_num_threads(options.threads)
            torch.backends.cuda.matmul.allow_tf32 = options.tf32  # fp32 means fp32 unless asked
            torch.backends.cudnn.allow_tf32 = options.tf32
            torch.cuda.reset_peak_memory_stats(self.torch_device)
            super().__init__(model, device, options, backend="cuda")
            self._dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(options.precision)
            self._graphs: dict[tuple[Any, ...], Any] = {}

        def _autocast(self) -> Any:
            if self._dtype is None:
                return contextlib.nullcontext()
            return torch.autocast("cuda", dtype=self._dtype)

        def _forward(self, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
            if options.cuda_graphs:
                return self._replay(tensors)
            with self._autocast():
                return self.module(*tensors)

        def _replay(self, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
            """Capture once per input signature, then copy inputs into the static buffers and replay."""
            key = tuple((t.shape, t.dtype) for t in tensors)
            if key not in self._graphs:
                static = [t.clone() for t in tensors]
                stream = torch.cuda.Stream(self.torch_device)
                stream.wait_stream(torch.cuda.current_stream(self.torch_device))
                with torch.cuda.stream(stream), self._autocast():
                    for _ in range(2):  # warm up outside the capture, as CUDA graphs require
                        self.module(*static)
                torch.cuda.current_stream(self.torch_device).wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph), self._autocast():
                    outputs = self.module(*static)
                self._graphs[key] = (graph, static, outputs)
            graph, static, outputs = self._graphs[key]
            for buffer, tensor in zip(static, tensors):
                buffer.copy_(tensor, non_blocking=True)
            graph.replay()
            return tuple(o.clone() for o in outputs)  # the next replay overwrites the static outputs

        def synchronize(self) -> None:
            torch.cuda.synchronize(self.torch_device)

        def device_time(self, inputs: Mapping[str, np.ndarray]) -> float:
            """Seconds of GPU time for one run (CUDA events), excluding host-side overhead.

            Implements ``hwkit.backend.DeviceTimer``: the bench reports these samples beside
            the wall-clock ones."""
            tensors = [self._to_device(inputs[name]) for name in self.input_names]
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            with torch.inference_mode():
                start.record()
                self._forward(tensors)
                end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3

        def memory_stats(self) -> dict[str, int]:
            return {"peak_allocated": torch.cuda.max_memory_allocated(self.torch_device),
                    "peak_reserved": torch.cuda.max_memory_reserved(self.torch_device)}

        def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            try:
                return super().execute(inputs)
            except torch.cuda.OutOfMemoryError as e:
                raise ExecutionError(f"cuda: out of GPU memory on {device.name}; use a smaller batch") from e

    return CudaExecutable()
