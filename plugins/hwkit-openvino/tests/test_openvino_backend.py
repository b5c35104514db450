"""The openvino backend: hwkit's conformance kit, its own options, what it refuses."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

import hwkit
from hwkit.testing import BackendConformance, require_backend


class TestOpenVinoConformance(BackendConformance):
    backend = "openvino"


def test_openvino_options():
    require_backend("openvino")
    with hwkit.compile(hwkit.Model.builtin("mlp"), "openvino", precision="fp32", hint="throughput") as exe:
        assert str(exe.compiled.get_property("PERFORMANCE_HINT")).endswith("THROUGHPUT")
        assert exe.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"  # mapped from fp32
    with pytest.raises(hwkit.OptionError, match="precision must be one of fp32, fp16, bf16"):
        hwkit.compile(hwkit.Model.builtin("mlp"), "openvino", precision="f32")  # OpenVINO's own name: refused


def test_openvino_refuses_sequences_at_compile():
    require_backend("openvino")
    seq = helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))
    graph = helper.make_graph([helper.make_node("SequenceLength", ["xs"], ["n"])], "seq",
                              [helper.make_value_info("xs", seq)], [helper.make_tensor_value_info("n", TensorProto.INT64, [])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    with pytest.raises(hwkit.CompileError, match="openvino takes tensors only, not xs: seq"):
        hwkit.compile(proto, "openvino")
