"""FLOPs per inference of an ONNX graph, counted from its shapes (no runtime, no torch).

Counted: 2 × multiply-accumulates of Conv, ConvTranspose, MatMul, Gemm, Einsum-free attention
(the Attention op), plus a nominal 5 FLOPs per element for normalisations and Softmax. Pure
element-wise ops are not counted: they are bound by memory, not by the arithmetic the matmul
peak measures, and counting them (as onnx-tool does) inflates efficiency by 2-32%.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import onnx
from onnx import shape_inference

from hwkit.model.model import Model

Shape = tuple[int, ...]
NORM_FLOPS_PER_ELEMENT = 5


def count_flops(model: Model, shapes: Mapping[str, Shape]) -> float | None:
    """FLOPs of one inference with the given input shapes, or None when shapes cannot be inferred."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto) if model.proto.ByteSize() < 2**30 else proto.CopyFrom(_without_weights(model.proto))
    for value in proto.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            del dims[:]
            for size in shapes[value.name]:
                dims.add().dim_value = int(size)
    try:
        inferred = shape_inference.infer_shapes(proto, data_prop=True)
    except (onnx.shape_inference.InferenceError, ValueError, RuntimeError):
        return None  # an unusual graph: efficiency columns stay empty rather than wrong
    known = _known_shapes(inferred.graph)
    total = 0.0
    for node in inferred.graph.node:
        counter = _COUNTERS.get(node.op_type)
        if counter is None or node.domain not in ("", "ai.onnx"):
            continue
        value = counter(node, known)
        if value is None:
            return None  # a counted op of unknown shape: better no figure than a wrong one
        total += value
    return total


def _without_weights(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose initializers keep their dims but not their data (shape inference needs dims only)."""
    light = onnx.ModelProto()
    light.CopyFrom(proto)
    for init in light.graph.initializer:
        init.ClearField("raw_data")
        init.ClearField("float_data")
    return light


def _known_shapes(graph: onnx.GraphProto) -> dict[str, Shape]:
    known: dict[str, Shape] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim):
            known[value.name] = tuple(d.dim_value for d in tensor.shape.dim)
    for init in graph.initializer:
        known[init.name] = tuple(init.dims)
    return known


def _conv(node: onnx.NodeProto, known: dict[str, Shape]) -> float | None:
    out, weight = known.get(node.output[0]), known.get(node.input[1])
    if out is None or weight is None:
        return None
    return 2.0 * math.prod(out) * math.prod(weight[1:])


def _conv_transpose(node: onnx.NodeProto, known: dict[str, Shape]) -> float | None:
    data, weight = known.get(node.input[0]), known.get(node.input[1])
    if data is None or weight is None:
        return None
    return 2.0 * math.prod(data) * math.prod(weight[1:])


def _matmul(node: onnx.NodeProto, known: dict[str, Shape]) -> float | None:
    a, out = known.get(node.input[0]), known.get(node.output[0])
    if a is None or out is None or not a:
        return None
    return 2.0 * math.prod(out) * a[-1]


def _gemm(node: onnx.NodeProto, known: dict[str, Shape]) -> float | None:
    a, out = known.get(node.input[0]), known.get(node.output[0])
    if a is None or out is None:
        return None
    trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
    return 2.0 * math.prod(out) * (a[0] if trans_a else a[-1])


def _attention(node: onnx.NodeProto, known: dict[str, Shape]) -> float | None:
    q, k = known.get(node.input[0]), known.get(node.input[1])
    if q is None or k is None:
        return None
    keys = k[2] if len(k) == 4 else k[1]
    return 4.0 * math.prod(q) * keys  # Q·Kᵀ and P·V, each 2 × q elements × keys


def _per_element(flops: int) -> Callable[[onnx.NodeProto, dict[str, Shape]], float | None]:
    def count(node: onnx.NodeProto, known: dict[str, Shape]) -> float | None:
        out = known.get(node.output[0])
        return None if out is None else float(flops * math.prod(out))

    return count


_COUNTERS: dict[str, Callable[[onnx.NodeProto, dict[str, Shape]], float | None]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Attention": _attention,
    "LayerNormalization": _per_element(NORM_FLOPS_PER_ELEMENT),
    "RMSNormalization": _per_element(NORM_FLOPS_PER_ELEMENT),
    "InstanceNormalization": _per_element(NORM_FLOPS_PER_ELEMENT),
    "GroupNormalization": _per_element(NORM_FLOPS_PER_ELEMENT),
    "BatchNormalization": _per_element(2),  # inference: one multiply-add per element
    "Softmax": _per_element(NORM_FLOPS_PER_ELEMENT),
}
