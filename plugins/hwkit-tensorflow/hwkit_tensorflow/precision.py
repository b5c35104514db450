"""Which precisions the two backends run, and how (``Backend.precisions``).

Found with tensorflow-cpu 2.21, onnx2tf 1.29.24 and ai-edge-litert 2.3 on an x86 CPU:

- fp32: both backends, natively.
- int8: an int8 row compiles hwkit's QDQ graph at fp32. onnx2tf bypasses every activation
  QuantizeLinear -> DequantizeLinear pair (its QuantizeLinear converter returns its input when
  only DequantizeLinear consumes it) and folds the weights' DequantizeLinear into float32
  constants: the .tflite holds FULLY_CONNECTED / CONV_2D on float32 tensors and no int8 tensor.
  So int8 is *emulated*, and only the weights' rounding is: on the built-in mlp the int8 row
  differs from the QDQ graph run by onnxruntime by 0.22 and from fp32 by 0.19 (cosine 0.9986).
- fp16 (litert): onnx2tf's float16 recipe (``Optimize.DEFAULT`` + ``supported_types=[float16]``)
  stores the weights in fp16 behind DEQUANTIZE ops; XNNPACK folds them back to fp32 when it
  takes the graph and computes in fp32. It would compute in fp16 only with the model's
  reduced-precision metadata *and* fp16 arithmetic (ARMv8.2 FP16, AVX512-FP16), and the
  converted model carries no such metadata: *emulated* everywhere.
- fp16 / bf16 (tensorflow): the SavedModel computes in float32 and there is no honest switch:
  Keras mixed-precision policies apply when a model is built, not to onnx2tf's converted graph.
"""

from __future__ import annotations

from hwkit.backend import NATIVE, Precision, PrecisionSupport

_INT8 = PrecisionSupport(emulated=(
    "onnx2tf drops the QDQ graph's activation quantisation and folds its int8 weights into float32: "
    "computed in fp32 with int8-rounded weights, no int8 kernels"))


def tensorflow_support() -> dict[Precision, PrecisionSupport]:
    why = ("the converted SavedModel computes in float32: neither onnx2tf nor TensorFlow offers a {0} "
           "version of it (Keras mixed precision applies only while a model is built)")
    return {"fp32": NATIVE, "fp16": PrecisionSupport(unsupported=why.format("fp16")),
            "bf16": PrecisionSupport(unsupported=why.format("bf16")), "int8": _INT8}


def litert_support() -> dict[Precision, PrecisionSupport]:
    return {
        "fp32": NATIVE,
        "fp16": PrecisionSupport(emulated=(
            "fp16 weights, dequantised to fp32 by XNNPACK, which computes in fp32 (the converted model has "
            "no reduced-precision metadata to allow fp16 arithmetic)")),
        "bf16": PrecisionSupport(unsupported="LiteRT has no bf16 kernels on the CPU"),
        "int8": _INT8,
    }
