"""Every runtime backend (parametrised) against ONNX's own reference evaluator (the spec's
semantics) on the built-in models, and the input and output kinds they must all handle. Each
plugin's own options and its conformance class live in the plugin's tests folder."""

from __future__ import annotations

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

import hwkit
from hwkit.errors import UnsupportedOpError
from hwkit.model.zoo import BUILTIN_MODELS
from hwkit.testing import require_backend
from tests.helpers import unknown_ops_model

RUNTIMES = ["onnxruntime", "openvino"]


@pytest.fixture(scope="module")
def reference_outputs():
    """Each built-in model's output from onnx.reference on hwkit's generated inputs (batch 2)."""
    refs = {}
    for name in BUILTIN_MODELS:
        model = hwkit.Model.builtin(name)
        inputs = model.make_inputs(dims={"batch": 2}, seed=3)
        (expected,) = ReferenceEvaluator(model.proto).run(None, inputs)
        refs[name] = (model, inputs, expected)
    return refs


@pytest.mark.parametrize("backend", RUNTIMES)
@pytest.mark.parametrize("name", list(BUILTIN_MODELS))
def test_matches_the_onnx_reference(backend, name, reference_outputs):
    require_backend(backend)
    model, inputs, expected = reference_outputs[name]
    assert np.abs(expected).max() > 1.0, "the weights must give outputs large enough to compare"
    with hwkit.compile(model, backend, threads=2) as exe:
        (actual,) = exe.run(inputs).values()
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("backend", RUNTIMES)
def test_unsupported_ops_are_listed_at_compile(backend):
    require_backend(backend)
    with pytest.raises(UnsupportedOpError) as caught:
        hwkit.compile(unknown_ops_model(), backend)
    assert set(caught.value.ops) == {"com.example.Frobnicate", "com.example.Twiddle"}
    assert caught.value.ops["com.example.Frobnicate"] == ["frob"]


@pytest.mark.parametrize("backend", RUNTIMES)
def test_scalar_and_bfloat16_inputs(backend):
    require_backend(backend)
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["h"], ["hf"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["hf", "s"], ["y"])],
        "bf16", [helper.make_tensor_value_info("h", TensorProto.BFLOAT16, [3]),
                 helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    import ml_dtypes

    h = np.array([1.5, -2.0, 3.25], dtype=ml_dtypes.bfloat16)
    with hwkit.compile(proto, backend) as exe:
        y = exe.run({"h": h, "s": np.float32(2.0)})["y"]
    np.testing.assert_array_equal(y, [3.0, -4.0, 6.5])


@pytest.mark.parametrize("backend", RUNTIMES)
def test_unused_input_is_fed_by_name(backend):
    require_backend(backend)
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Neg", ["used"], ["y"])], "unused",
        [helper.make_tensor_value_info("unused", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("used", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    with hwkit.compile(proto, backend) as exe:
        y = exe.run({"unused": np.ones(2, np.float32), "used": np.array([1, 2], np.float32)})["y"]
    np.testing.assert_array_equal(y, [-1, -2])


def sequence_model():
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("SequenceInsert", ["xs", "x"], ["ys"]), helper.make_node("SequenceLength", ["ys"], ["n"])],
        "seq", [helper.make_value_info("xs", helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))),
                helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_value_info("ys", helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))),
         helper.make_tensor_value_info("n", TensorProto.INT64, [])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


@pytest.mark.parametrize("backend", ["onnxruntime", "cpu"])
def test_sequence_inputs_and_outputs(backend):
    require_backend(backend)
    xs, x = [np.array([1, 2], np.float32)], np.array([3, 4], np.float32)
    with hwkit.compile(sequence_model(), backend) as exe:
        out = exe.run({"xs": xs, "x": x})
    assert int(out["n"]) == 2 and [a.tolist() for a in out["ys"]] == [[1, 2], [3, 4]]
    from hwkit.parity.agreement import compare_outputs

    (agreement, _) = compare_outputs(out, {"ys": [a + 1e-3 for a in out["ys"]], "n": out["n"]})
    assert agreement.shape_ok and 9e-4 < agreement.max_abs < 1.1e-3
