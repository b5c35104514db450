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
