"""Exported decompositions become torch's fused ops (attention, Gelu, RMSNorm, LayerNorm, the
depthwise layout), and the numbers stay within the fp32 profile of onnxruntime's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from hwkit.parity.agreement import compare_output
from hwkit.parity.tolerance import tolerance
from hwkit_torch.fx import convert
import onnx_graphs as graphs  # this folder's helpers: pytest puts the folder on sys.path

ort = pytest.importorskip("onnxruntime")
F32 = TensorProto.FLOAT


def _scalar(name: str, value: float):
    return graphs.init(name, np.array(value, np.float32))


def _check(model, feeds: dict[str, np.ndarray], fused) -> None:
    gm = convert(model)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert fused in targets, f"{fused.__name__} not in the converted graph"
    expected = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    with torch.inference_mode():
        (got,) = gm(*[torch.from_numpy(v) for v in feeds.values()])
    agreement = compare_output("y", expected, got.numpy(), tolerance("fp32"))
    assert agreement.passed, agreement.to_dict()


def _attention(scale_where: str, mask: bool):
    nodes, inits = [], [graphs.ints("perm_k", [0, 1, 3, 2])]
    q, kt = "q", "kt"
    nodes.append(helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]))
    if scale_where == "operands":  # dynamo's export: sqrt(scale) on q and on kᵀ
        inits.append(_scalar("root", 0.125 ** 0.5))
        nodes += [helper.make_node("Mul", ["q", "root"], ["qs"]), helper.make_node("Mul", ["kt", "root"], ["kts"])]
        q, kt = "qs", "kts"
    nodes.append(helper.make_node("MatMul", [q, kt], ["s"]))
    scores = "s"
    if scale_where == "scores":
        inits.append(_scalar("div", 8.0))
        nodes.append(helper.make_node("Div", ["s", "div"], ["ss"]))
        scores = "ss"
    inputs = [helper.make_tensor_value_info(n, F32, ["B", 2, "S", 8]) for n in ("q", "k", "v")]
    if mask:
        inputs.append(helper.make_tensor_value_info("mask", F32, ["B", 1, 1, "S"]))
        nodes.append(helper.make_node("Add", [scores, "mask"], ["sm"]))
        scores = "sm"
    nodes += [helper.make_node("Softmax", [scores], ["p"], axis=-1), helper.make_node("MatMul", ["p", "v"], ["y"])]
    return graphs.model(nodes, inputs, [helper.make_tensor_value_info("y", F32, None)], inits)


@pytest.mark.parametrize("scale_where, mask", [("scores", True), ("operands", True), ("none", False)])
def test_attention_becomes_sdpa(scale_where, mask):
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((2, 2, 5, 8), dtype=np.float32) for n in ("q", "k", "v")}
    if mask:
        m = np.zeros((2, 1, 1, 5), np.float32)
        m[0, ..., -2:] = -1e9  # padding
        feeds["mask"] = m
    _check(_attention(scale_where, mask), feeds, F.scaled_dot_product_attention)


def _gelu(order: str):
    inits = [_scalar("r2", 1 / np.sqrt(2)), _scalar("one", 1.0), _scalar("half", 0.5)]
    nodes = [helper.make_node("Mul", ["x", "r2"], ["a"]), helper.make_node("Erf", ["a"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["e1"])]
    if order == "half_last":
        nodes += [helper.make_node("Mul", ["x", "e1"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])]
    else:
        nodes += [helper.make_node("Mul", ["e1", "half"], ["m"]), helper.make_node("Mul", ["x", "m"], ["y"])]
    return graphs.model(nodes, [helper.make_tensor_value_info("x", F32, ["N", 16])],
                        [helper.make_tensor_value_info("y", F32, None)], inits)


@pytest.mark.parametrize("order", ["half_last", "half_first"])
def test_gelu_decomposition_becomes_gelu(order):
    x = np.random.default_rng(1).standard_normal((3, 16), dtype=np.float32) * 3
    _check(_gelu(order), {"x": x}, F.gelu)


def _norm(kind: str):
    inits = [_scalar("eps", 1e-6), _scalar("one", 1.0), graphs.init("w", graphs.rand(16))]
    nodes = []
    base = "x"
    if kind == "layer":
        nodes += [helper.make_node("ReduceMean", ["x", "axes"], ["mu"], keepdims=1),
                  helper.make_node("Sub", ["x", "mu"], ["d"])]
        base = "d"
    nodes += [helper.make_node("Mul", [base, base], ["sq"]),
              helper.make_node("ReduceMean", ["sq", "axes"], ["ms"], keepdims=1),
              helper.make_node("Add", ["ms", "eps"], ["mse"]), helper.make_node("Sqrt", ["mse"], ["r"])]
    if kind == "layer":
        nodes.append(helper.make_node("Div", [base, "r"], ["n"]))
    else:  # T5's spelling: x * (1 / sqrt(...))
        nodes += [helper.make_node("Div", ["one", "r"], ["inv"]), helper.make_node("Mul", [base, "inv"], ["n"])]
    nodes.append(helper.make_node("Mul", ["n", "w"], ["y"]))
    inits.append(graphs.ints("axes", [-1]))
    return graphs.model(nodes, [helper.make_tensor_value_info("x", F32, ["N", "T", 16])],
                        [helper.make_tensor_value_info("y", F32, None)], inits)


@pytest.mark.parametrize("kind, fused", [("rms", F.rms_norm), ("layer", F.layer_norm)])
def test_norm_decompositions_become_fused_norms(kind, fused):
    x = np.random.default_rng(2).standard_normal((2, 3, 16), dtype=np.float32) * 2 + 1
    _check(_norm(kind), {"x": x}, fused)


def test_attention_with_other_users_is_left_alone():
    m = _attention("none", False)
    m.graph.output.append(helper.make_tensor_value_info("p", F32, None))  # the probabilities are wanted too
    gm = convert(m)
    assert F.scaled_dot_product_attention not in [n.target for n in gm.graph.nodes]


def test_depthwise_convolution_runs_channels_last():
    c = 8
    m = graphs.model([helper.make_node("Conv", ["x", "w", "b"], ["y"], group=c, pads=[1, 1, 1, 1])],
                     [helper.make_tensor_value_info("x", F32, ["N", c, 9, 9])],
                     [helper.make_tensor_value_info("y", F32, None)],
                     [graphs.init("w", graphs.rand(c, 1, 3, 3)), graphs.init("b", graphs.rand(c))])
    gm = convert(m)
    weights = [t for t in gm.buffers() if t.dim() == 4]
    assert weights and all(t.is_contiguous(memory_format=torch.channels_last) for t in weights)
    x = np.random.default_rng(3).standard_normal((2, c, 9, 9), dtype=np.float32)
    expected = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    with torch.inference_mode():
        (got,) = gm(torch.from_numpy(x))
    assert got.is_contiguous(memory_format=torch.channels_last)  # the activations follow
    assert compare_output("y", expected, got.numpy(), tolerance("fp32")).passed
