"""Which precisions ONNX Runtime runs on which provider, and the fp16 graph it runs.

ONNX Runtime has no precision switch: a precision is a graph. fp16 is the graph converted by
onnxconverter-common (inputs and outputs kept fp32), declared only where the provider has fp16
kernels; int8 is hwkit's QDQ graph, which the CPU provider fuses into int8 kernels
(QLinearConv, MatMulInteger…) at the default optimisation level.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from hwkit import Device, Model
from hwkit.backend import NATIVE, Precision, PrecisionSupport
from hwkit.errors import CompileError

# Providers with fp16 kernels for the common ops (convolutions, matmuls, normalisations).
FP16_DEVICES = ("cuda:0", "tensorrt:0", "rocm:0", "migraphx:0", "dml:0", "coreml", "qnn", "openvino")
# Providers that run a QDQ graph with int8 kernels; the others dequantise and compute in float.
INT8_DEVICES = ("cpu", "tensorrt:0", "openvino", "qnn")

CPU_FP16 = ("ONNX Runtime's CPU provider has few fp16 kernels: after its graph optimisations an fp16 graph is "
            "computed largely in fp32 (casts inserted around the nodes), so the row would measure fp32")
BF16 = ("ONNX Runtime has no whole-graph bf16 path (onnxconverter-common converts to fp16 only, and the CPU "
        "provider has no bf16 kernels for convolutions and matmuls)")


def declared(device: Device) -> dict[Precision, PrecisionSupport]:
    """fp32 everywhere; fp16 on providers with fp16 kernels (with onnxconverter-common
    installed); bf16 nowhere; int8 natively where the provider has int8 kernels."""
    if device.name == "cpu":
        fp16 = PrecisionSupport(unsupported=CPU_FP16)
    elif device.name not in FP16_DEVICES:
        fp16 = PrecisionSupport(unsupported=f"ONNX Runtime's {device.name} provider is not known to have fp16 kernels")
    elif importlib.util.find_spec("onnxconverter_common") is None:
        fp16 = PrecisionSupport(unsupported="fp16 needs onnxconverter-common: pip install onnxconverter-common")
    else:
        fp16 = NATIVE
    int8 = NATIVE if device.name in INT8_DEVICES else PrecisionSupport(
        emulated=f"ONNX Runtime's {device.name} provider dequantises the QDQ graph and computes in float")
    return {"fp32": NATIVE, "fp16": fp16, "bf16": PrecisionSupport(unsupported=BF16), "int8": int8}


def to_fp16(model: Model) -> Any:
    """The serialized graph with float tensors converted to fp16, inputs and outputs kept fp32
    (onnxconverter-common's ``keep_io_types``)."""
    from onnxconverter_common import float16

    try:
        converted = float16.convert_float_to_float16(model.proto, keep_io_types=True)
    except Exception as e:  # noqa: BLE001 - the converter raises bare Exceptions; named in the error
        raise CompileError(f"onnxruntime: converting '{model.name}' to fp16 failed: {type(e).__name__}: {e}") from e
    return converted.SerializeToString()
