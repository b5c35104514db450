"""Reading ONNX protos: tensors, attribute values, declared value types."""

from __future__ import annotations

from typing import Any

import onnx
from onnx import helper, numpy_helper

from hwkit.errors import ModelError
from hwkit_torch.fx import dtypes
from hwkit_torch.fx.registry import NotSupported


def collect_types(graph: onnx.GraphProto, out: dict[str, onnx.TypeProto]) -> None:
    for t in graph.initializer:
        out.setdefault(t.name, helper.make_tensor_type_proto(t.data_type, list(t.dims)))
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.type.WhichOneof("value") is not None:
            out.setdefault(vi.name, vi.type)
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                collect_types(a.g, out)
            for g in a.graphs:
                collect_types(g, out)


def tensor_from_proto(t: onnx.TensorProto) -> Any:
    """Torch tensor of an ONNX tensor (numpy object array for strings)."""
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"cannot read tensor {t.name}: {e}") from e
    if arr.dtype == object:
        return arr
    if t.data_type not in dtypes.ONNX_TO_TORCH:
        raise NotSupported(f"dtype {dtypes.name(t.data_type)} has no torch equivalent")
    return dtypes.numpy_to_torch(arr)


def attr_value(a: onnx.AttributeProto) -> Any:
    A = onnx.AttributeProto
    if a.type == A.TENSOR:
        return tensor_from_proto(a.t)
    if a.type == A.SPARSE_TENSOR:
        return dtypes.numpy_to_torch(numpy_helper.to_array(a.sparse_tensor))
    if a.type == A.GRAPH:
        return a.g
    if a.type == A.GRAPHS:
        return list(a.graphs)
    if a.type == A.TENSORS:
        return [tensor_from_proto(t) for t in a.tensors]
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8", "replace") for x in v]
    return v
