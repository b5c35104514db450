"""Shared by the hwkit-tensorflow tests: the skip when the conversion stack is missing, and tiny
graphs (the fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

# The modules the two backends need, and what installs them.
NEEDED = {"tensorflow": "tensorflow-cpu", "onnx2tf": "onnx2tf", "tf_keras": "tf-keras",
          "ai_edge_litert": "ai-edge-litert"}


def skip_without_conversion_stack() -> None:
    """Skip the calling module, with the reason, when a module of the stack is missing (checked
    with find_spec, so collecting does not import TensorFlow)."""
    missing = [f"{module} ({dist})" for module, dist in NEEDED.items() if importlib.util.find_spec(module) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: hwkit install tensorflow", allow_module_level=True)


def _model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
           initializers: list[onnx.TensorProto], name: str) -> onnx.ModelProto:
    proto = helper.make_model(helper.make_graph(nodes, name, inputs, outputs, initializers),
                              opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


def layouts_graph() -> onnx.ModelProto:
    """Every layout case in one graph (one conversion per backend): a 1x8x8x8 NCHW conv whose
    dims are all equal (a shape cannot tell NCHW from NHWC), its 3-D reduction, a 1-D conv on an
    NCW input (3-D output), and a batched MatMul on a 3-D input that is no image at all."""
    f32 = TensorProto.FLOAT
    rng = np.random.default_rng(7)
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
               for name, shape in (("w2d", (8, 8, 3, 3)), ("w1d", (6, 8, 3)), ("wmm", (4, 5)))]
    nodes = [
        helper.make_node("Conv", ["image", "w2d"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["image_out"]),
        helper.make_node("ReduceMean", ["conv"], ["reduced"], axes=[3], keepdims=0),
        helper.make_node("Conv", ["signal", "w1d"], ["signal_out"], pads=[1, 1]),
        helper.make_node("MatMul", ["table", "wmm"], ["table_out"]),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("image", f32, [1, 8, 8, 8]),
         helper.make_tensor_value_info("signal", f32, [1, 8, 8]),
         helper.make_tensor_value_info("table", f32, [2, 3, 4])],
        [helper.make_tensor_value_info("image_out", f32, [1, 8, 8, 8]),
         helper.make_tensor_value_info("reduced", f32, [1, 8, 8]),
         helper.make_tensor_value_info("signal_out", f32, [1, 6, 8]),
         helper.make_tensor_value_info("table_out", f32, [2, 3, 5])],
        weights, "layouts")


def offset_graph(offset: float) -> onnx.ModelProto:
    """x + offset: a graph of its own for each offset (a conversion nobody else has made)."""
    f32 = TensorProto.FLOAT
    return _model([helper.make_node("Add", ["x", "c"], ["y"])], [helper.make_tensor_value_info("x", f32, [2, 3])],
                  [helper.make_tensor_value_info("y", f32, [2, 3])],
                  [numpy_helper.from_array(np.full((3,), offset, np.float32), "c")], f"offset_{offset}")


def castlike_graph() -> onnx.ModelProto:
    """Two CastLike nodes (standard ONNX, opset 15+), an op onnx2tf 1.29 has no converter for."""
    f32 = TensorProto.FLOAT
    return _model([helper.make_node("CastLike", ["x", "x"], ["a"], name="first"),
                   helper.make_node("CastLike", ["a", "x"], ["y"], name="second")],
                  [helper.make_tensor_value_info("x", f32, [2])], [helper.make_tensor_value_info("y", f32, [2])],
                  [], "castlike")


def kept_3d_graph() -> onnx.ModelProto:
    """3-D inputs onnx2tf keeps: an elementwise chain (Sigmoid, Relu) that onnx2tf leaves
    channel-last though no spatial op marks it so, and a Conv1d followed by Relu."""
    f32 = TensorProto.FLOAT
    weights = [numpy_helper.from_array(np.random.default_rng(11).standard_normal((6, 4, 3)).astype(np.float32), "w")]
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Relu", ["s"], ["y"]),
             helper.make_node("Conv", ["signal", "w"], ["c"], pads=[1, 1]), helper.make_node("Relu", ["c"], ["z"])]
    return _model(nodes, [helper.make_tensor_value_info("x", f32, [3, 4, 5]),
                          helper.make_tensor_value_info("signal", f32, [2, 4, 9])],
                  [helper.make_tensor_value_info("y", f32, [3, 4, 5]),
                   helper.make_tensor_value_info("z", f32, [2, 6, 9])],
                  weights, "kept_3d")


def tied_3d_graph() -> onnx.ModelProto:
    """Relu on a 3x4x4 input: turned channel-last it is still 3x4x4, so neither a shape nor
    onnx2tf's shape-made record can say which layout the output has."""
    f32 = TensorProto.FLOAT
    return _model([helper.make_node("Relu", ["x"], ["y"])], [helper.make_tensor_value_info("x", f32, [3, 4, 4])],
                  [helper.make_tensor_value_info("y", f32, [3, 4, 4])], [], "tied_3d")


def agrees_with_onnxruntime(graph: onnx.ModelProto, backend: str, seed: int) -> dict[str, Any]:
    """Run ``graph`` on ``backend``, assert every output has the reference's shape and values
    (onnxruntime, 1e-4), and return the conversion's meta.json (its layouts)."""
    import hwkit
    from hwkit.testing.conformance import reference_outputs

    model = hwkit.Model.load(graph)
    inputs = model.make_inputs(seed=seed)
    expected = reference_outputs(model, inputs)
    with hwkit.compile(model, backend) as exe:
        got = exe.run(inputs)
        meta: dict[str, Any] = exe.conversion.meta
    for spec in model.outputs:
        assert got[spec.name].shape == expected[spec.name].shape, spec.name
        np.testing.assert_allclose(got[spec.name], expected[spec.name], rtol=1e-4, atol=1e-4, err_msg=spec.name)
    return meta
