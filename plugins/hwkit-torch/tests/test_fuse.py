"""The MatMul + bias → F.linear fusion: applied where it is exact, left alone elsewhere."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from hwkit_torch.fx import convert


def matmul_add(weight: np.ndarray, bias: np.ndarray, x_shape: list[int]):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])], "lin",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_linear_layers_become_one_fused_call():
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((8, 5), dtype=np.float32), rng.standard_normal(5, dtype=np.float32)
    gm = convert(matmul_add(w, b, ["batch", 3, 8]))
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert F.linear in targets and torch.matmul not in targets
    x = rng.standard_normal((2, 3, 8), dtype=np.float32)
    (y,) = gm(torch.from_numpy(x))
    np.testing.assert_allclose(y.numpy(), x @ w + b, rtol=1e-5, atol=1e-6)


def test_a_batched_weight_is_left_alone():
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((2, 8, 5), dtype=np.float32), rng.standard_normal(5, dtype=np.float32)
    gm = convert(matmul_add(w, b, [2, 3, 8]))
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert F.linear not in targets
    x = rng.standard_normal((2, 3, 8), dtype=np.float32)
    (y,) = gm(torch.from_numpy(x))
    np.testing.assert_allclose(y.numpy(), x @ w + b, rtol=1e-5, atol=1e-6)


def gemm_in_out(weight: np.ndarray, bias: np.ndarray | None):
    """transformers' Conv1D (GPT-2) as exported: Gemm with the weight in (in, out) order, transB=0;
    a zero bias is dropped by the exporter, so both forms occur."""
    inputs = ["x", "w"] + (["b"] if bias is not None else [])
    inits = [numpy_helper.from_array(weight, "w")] + ([numpy_helper.from_array(bias, "b")] if bias is not None else [])
    graph = helper.make_graph(
        [helper.make_node("Gemm", inputs, ["y"], transB=0)], "conv1d",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["tokens", weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_in_out_weight_gemm_becomes_a_onednn_linear_and_agrees():
    from hwkit.parity.agreement import compare_output
    from hwkit.parity.tolerance import tolerance
    from hwkit_torch import onednn
    from hwkit_torch.compiled import compile_graph

    rng = np.random.default_rng(2)
    w, b = rng.standard_normal((16, 24), dtype=np.float32), rng.standard_normal(24, dtype=np.float32)
    x = rng.standard_normal((5, 16), dtype=np.float32)
    for bias in (b, None):
        gm = convert(gemm_in_out(w, bias))
        assert F.linear in [n.target for n in gm.graph.nodes if n.op == "call_function"]
        expected = x @ w + (bias if bias is not None else 0)
        if onednn.available():
            gm = compile_graph(gm, "off", "cpu")
            assert torch.ops.mkldnn._linear_pointwise.default in [n.target for n in gm.graph.nodes]
        with torch.inference_mode():
            (y,) = gm(torch.from_numpy(x))
        assert compare_output("y", expected, y.numpy(), tolerance("fp32")).passed
