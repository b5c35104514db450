"""The precision axis on the shipped runtimes: what onnxruntime, openvino and cpu declare here,
fp32 really being f32 in OpenVINO, and int8 rows on a QDQ graph that both runtimes run natively
(quantised in the test with onnxruntime.quantization, standing in for hwkit's quantiser when it
is absent, on an ONNX file hwkit did not produce)."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import hwkit
from hwkit.cli import main
from hwkit.parity.check import check
from hwkit.plugins import registry
from hwkit.testing import require_backend


def _declared(name: str) -> dict:
    info = require_backend(name)
    return dict(info.runtime.precisions(info.devices[0]))


def test_onnxruntime_cpu_declares_fp32_and_int8_and_says_why_not_fp16_bf16():
    declared = _declared("onnxruntime")
    assert declared["fp32"].supported and declared["int8"].supported and not declared["int8"].emulated
    assert "computed largely in fp32" in declared["fp16"].unsupported
    assert "no whole-graph bf16 path" in declared["bf16"].unsupported


def test_onnxruntime_gpu_providers_get_fp16_through_the_converted_graph():
    from hwkit_onnxruntime.precision import declared, to_fp16

    cuda = declared(hwkit.Device("cuda:0", "gpu"))
    assert cuda["fp16"].supported == (importlib.util.find_spec("onnxconverter_common") is not None)
    assert cuda["int8"].emulated  # the CUDA provider dequantises QDQ graphs
    if importlib.util.find_spec("onnxconverter_common") is None:
        pytest.skip("onnxconverter-common is not installed")
    converted = onnx.load_from_string(to_fp16(hwkit.Model.builtin("mlp")))
    # Inputs and outputs stay fp32; the weights became fp16.
    assert converted.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert converted.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert {i.data_type for i in converted.graph.initializer} == {TensorProto.FLOAT16}


def test_openvino_fp32_is_f32_even_where_it_would_default_to_bf16():
    require_backend("openvino")
    with hwkit.compile("mlp", "openvino") as exe:
        assert str(exe.compiled.get_property("INFERENCE_PRECISION_HINT")) in ("<Type: 'float32'>", "f32")
    declared = _declared("openvino")
    capabilities = registry().get("openvino").runtime.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert declared["bf16"].supported == ("BF16" in capabilities)
    assert declared["fp16"].supported == ("FP16" in capabilities)


def test_torch_cpu_runs_bf16_under_autocast_and_refuses_fp16():
    require_backend("cpu")
    declared = _declared("cpu")
    assert declared["bf16"].supported and declared["int8"].emulated and "reference loops" in declared["fp16"].unsupported
    model = hwkit.Model.builtin("mlp")
    inputs = model.make_inputs(model.resolve_shapes(None, {}), seed=0)
    # ONNX Runtime's fp32 as the baseline: a torch fp32 matmul first makes the first few hundred bf16
    # autocast calls in that process ~1000x slower (torch 2.13 on this CPU; each bench row has its own process).
    with hwkit.compile(model, "onnxruntime") as fp32, hwkit.compile(model, "cpu", precision="bf16") as bf16:
        a, b = fp32.run(inputs), bf16.run(inputs)
    name = model.outputs[0].name
    assert b[name].dtype == np.float32  # fp32 at the graph's outputs
    assert 0 < np.abs(a[name] - b[name]).max() < 0.1


def _conv_model(path) -> None:
    """A small conv classifier: x[1,3,16,16] -> Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> y[1,10]."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) * 0.1, "b")
    fc = numpy_helper.from_array(rng.standard_normal((10, 8)).astype(np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "convnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [w, b, fc])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def test_check_int8_on_a_foreign_onnx_file_with_onnxruntime_and_openvino(tmp_path, capsys):
    require_backend("onnxruntime")
    require_backend("openvino")
    path = tmp_path / "convnet.onnx"
    _conv_model(path)
    report = check(str(path), ["onnxruntime", "openvino"], precision="int8", seeds=2, isolation=False)
    rows = {(r.backend, r.precision): r for r in report.results}
    assert set(rows) == {("onnxruntime", "int8"), ("openvino", "int8")}
    for row in rows.values():
        assert row.status == "ok" and not row.emulated and row.tolerance.profile == "int8"
        assert row.agreement[0].top1 is not None and row.agreement[0].cosine > 0.99
    assert main(["check", str(path), "--precision", "int8", "-b", "onnxruntime,openvino", "--no-isolation",
                 "--seeds", "1"]) == 0
    assert "int8 (atol" in " ".join(capsys.readouterr().out.split())
