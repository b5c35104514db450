"""Precision for the torch backends (cpu, cuda): which they run, and how.

fp16 / bf16 run the converted graph under ``torch.autocast``: matmuls and convolutions compute in
the reduced precision, precision-sensitive ops (softmax, normalisations, reductions) stay fp32,
and the graph's inputs and outputs stay fp32 (the executable casts outputs to the declared
dtypes). Chosen over casting the weights by measurement (docs/precision.md; 2-core EPYC with
AVX512-BF16, torch 2.13): bf16 autocast ran the built-in encoder 1.97x faster than fp32, the
weights cast to bf16 0.47x (ops without bf16 kernels), at the same cosine (0.99999).

int8 is hwkit's QDQ graph: the converter computes Quantize/DequantizeLinear in fp32 (fake
quantisation), so the row is labelled emulated. Imports no torch at module level.
"""

from __future__ import annotations

from typing import Any

from hwkit.backend import NATIVE, Precision, PrecisionSupport

INT8 = PrecisionSupport(emulated="the converter computes the QDQ graph in fp32 (fake quantisation), no int8 kernels")
# Measured (torch 2.13, 2-core EPYC): fp16 autocast ran the built-in cnn and encoder 100-200x
# slower than fp32: torch's CPU kernels for fp16 convolutions and matmuls are reference loops.
CPU_FP16 = ("torch has no fast fp16 kernels on the CPU (its fp16 convolutions and matmuls are reference loops, "
            "measured 100-200x slower than fp32): use bf16, or the cuda backend")


def declared(kind: str, bf16: bool = True) -> dict[Precision, PrecisionSupport]:
    """fp32 and bf16 (where the device has it) natively, fp16 on GPUs, int8 emulated."""
    half = NATIVE if kind == "gpu" else PrecisionSupport(unsupported=CPU_FP16)
    brain = NATIVE if bf16 else PrecisionSupport(unsupported="this GPU has no bf16 support (torch.cuda.is_bf16_supported)")
    return {"fp32": NATIVE, "fp16": half, "bf16": brain, "int8": INT8}


class Autocast:
    """A converted graph called under ``torch.autocast`` in ``precision`` (fp16 / bf16)."""

    def __init__(self, module: Any, device_type: str, precision: str) -> None:
        import torch

        self.module = module
        self.device_type = device_type
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]

    def __call__(self, *tensors: Any) -> Any:
        import torch

        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.module(*tensors)


def with_precision(module: Any, device_type: str, precision: str) -> Any:
    """``module`` itself at fp32, else wrapped in ``Autocast``."""
    return module if precision == "fp32" else Autocast(module, device_type, precision)
