"""Small ONNX graphs for the converter tests, built with onnx.helper (fast, deterministic)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32 = TensorProto.FLOAT
_rng = np.random.default_rng(0)


def init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(arr, name)


def rand(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (_rng.standard_normal(shape) * scale).astype(np.float32)


def ints(name: str, vals: list[int]) -> onnx.TensorProto:
    return init(name, np.array(vals, dtype=np.int64))


def model(nodes: list, inputs: list, outputs: list, inits: list, opset: int = 23) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def small_cnn(batch: str | int = "N") -> onnx.ModelProto:
    """Depthwise conv + hardswish + squeeze-excite + bilinear Resize + ArgMax over channels."""
    c = 8
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("HardSwish", ["c0"], ["h0"]),
        helper.make_node("Conv", ["h0", "wd", "bd"], ["dw"], group=c, pads=[1, 1, 1, 1]),
        helper.make_node("HardSwish", ["dw"], ["h1"]),
        # squeeze-excite
        helper.make_node("GlobalAveragePool", ["h1"], ["gap"]),
        helper.make_node("Conv", ["gap", "ws1", "bs1"], ["s1"]),
        helper.make_node("Relu", ["s1"], ["s1r"]),
        helper.make_node("Conv", ["s1r", "ws2", "bs2"], ["s2"]),
        helper.make_node("HardSigmoid", ["s2"], ["gate"], alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["h1", "gate"], ["se"]),
        helper.make_node("Resize", ["se", "", "scales"], ["up"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("ArgMax", ["up"], ["am"], axis=1, keepdims=0),
    ]
    inits = [
        init("w0", rand(c, 3, 3, 3)), init("b0", rand(c)),
        init("wd", rand(c, 1, 3, 3)), init("bd", rand(c)),
        init("ws1", rand(4, c, 1, 1)), init("bs1", rand(4)),
        init("ws2", rand(c, 4, 1, 1)), init("bs2", rand(c)),
        init("scales", np.array([1, 1, 2, 2], dtype=np.float32)),
    ]
    return model(
        nodes,
        [helper.make_tensor_value_info("x", F32, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info("up", F32, [batch, c, 16, 16]),
         helper.make_tensor_value_info("am", TensorProto.INT64, [batch, 16, 16])],
        inits,
    )


def vit_patch_embed() -> onnx.ModelProto:
    """Conv(stride=patch) -> Reshape(B, C, -1) via Shape/Gather/Concat -> Transpose -> + pos."""
    d, p = 16, 4
    nodes = [
        helper.make_node("Conv", ["x", "wp", "bp"], ["pe"], kernel_shape=[p, p], strides=[p, p]),
        helper.make_node("Shape", ["pe"], ["shp"]),
        helper.make_node("Gather", ["shp", "i0"], ["b"], axis=0),
        helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
        helper.make_node("Concat", ["b1", "dm1"], ["newshape"], axis=0),
        helper.make_node("Reshape", ["pe", "newshape"], ["flat"]),
        helper.make_node("Transpose", ["flat"], ["tok"], perm=[0, 2, 1]),
        helper.make_node("Add", ["tok", "pos"], ["y"]),
    ]
    inits = [
        init("wp", rand(d, 3, p, p)), init("bp", rand(d)), ints("i0", [0]),
        ints("ax0", [0]), ints("dm1", [d, -1]), init("pos", rand(16, d)),
    ]
    m = model(nodes, [helper.make_tensor_value_info("x", F32, ["B", 3, 16, 16])],
              [helper.make_tensor_value_info("y", F32, ["B", 16, d])], inits)
    # Gather with a 1-element index gives shape [1]; make it scalar like exporters do.
    m.graph.initializer[2].CopyFrom(init("i0", np.array(0, dtype=np.int64)))
    return m


def _rotary_nodes(x: str, out: str, prefix: str) -> list:
    """Decomposed rotate-half rotary embedding: x * cos + rotate_half(x) * sin (x: [B,H,S,D])."""
    return [
        helper.make_node("Slice", [x, "r_zero", "r_half", "r_axis"], [prefix + "x1"]),
        helper.make_node("Slice", [x, "r_half", "r_end", "r_axis"], [prefix + "x2"]),
        helper.make_node("Neg", [prefix + "x2"], [prefix + "nx2"]),
        helper.make_node("Concat", [prefix + "nx2", prefix + "x1"], [prefix + "rot"], axis=-1),
        helper.make_node("Mul", [x, "cos"], [prefix + "a"]),
        helper.make_node("Mul", [prefix + "rot", "sin"], [prefix + "b"]),
        helper.make_node("Add", [prefix + "a", prefix + "b"], [out]),
    ]


def tiny_transformer(attention_op: bool, seq: str | int = "S") -> onnx.ModelProto:
    """Embedding Gather -> RMSNorm -> QKV -> rotary -> causal attention -> proj -> ArgMax.

    ``attention_op`` selects the opset-23 Attention op or a MatMul/Softmax form with a
    Trilu-built causal mask.
    """
    vocab, d, h = 32, 16, 2
    hd = d // h
    s_max = 8
    inv = 1.0 / (10000 ** (np.arange(0, hd, 2) / hd))
    ang = np.outer(np.arange(s_max), inv)
    cos = np.concatenate([np.cos(ang)] * 2, -1).astype(np.float32)
    sin = np.concatenate([np.sin(ang)] * 2, -1).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"], axis=0),  # [B,S,D]
        helper.make_node("RMSNormalization", ["e", "g"], ["n"], axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["n", "wq"], ["q0"]),
        helper.make_node("MatMul", ["n", "wk"], ["k0"]),
        helper.make_node("MatMul", ["n", "wv"], ["v0"]),
    ]
    for t in ("q", "k", "v"):
        nodes += [
            helper.make_node("Reshape", [t + "0", "heads_shape"], [t + "r"]),
            helper.make_node("Transpose", [t + "r"], [t + "t"], perm=[0, 2, 1, 3]),  # [B,H,S,hd]
        ]
    # cos/sin sliced to the (dynamic) sequence length
    nodes += [
        helper.make_node("Shape", ["ids"], ["ids_shape"]),
        helper.make_node("Slice", ["ids_shape", "one", "two"], ["slen"]),
        helper.make_node("Slice", ["cos_full", "zero", "slen", "zero"], ["cos"]),
        helper.make_node("Slice", ["sin_full", "zero", "slen", "zero"], ["sin"]),
    ]
    nodes += _rotary_nodes("qt", "qrot", "q_") + _rotary_nodes("kt", "krot", "k_")
    if attention_op:
        nodes.append(helper.make_node("Attention", ["qrot", "krot", "vt"], ["att"], is_causal=1))
    else:
        nodes += [
            helper.make_node("Transpose", ["krot"], ["kT"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", ["qrot", "kT"], ["sc0"]),
            helper.make_node("Mul", ["sc0", "scale"], ["sc"]),
            helper.make_node("Shape", ["sc"], ["sc_shape"]),
            helper.make_node("ConstantOfShape", ["sc_shape"], ["ones"],
                             value=helper.make_tensor("v", TensorProto.BOOL, [1], [True])),
            helper.make_node("Trilu", ["ones"], ["keep"], upper=0),
            helper.make_node("Where", ["keep", "sc", "neg_inf"], ["masked"]),
            helper.make_node("Softmax", ["masked"], ["p"], axis=-1),
            helper.make_node("MatMul", ["p", "vt"], ["att"]),
        ]
    nodes += [
        helper.make_node("Transpose", ["att"], ["att_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["att_t", "merge_shape"], ["merged"]),
        helper.make_node("MatMul", ["merged", "wo"], ["o"]),
        helper.make_node("Add", ["o", "e"], ["res"]),
        helper.make_node("MatMul", ["res", "lm"], ["logits"]),
        helper.make_node("ArgMax", ["logits"], ["next"], axis=-1, keepdims=0),
    ]
    inits = [
        init("emb", rand(vocab, d)), init("g", 1 + rand(d, scale=0.1)),
        init("wq", rand(d, d)), init("wk", rand(d, d)), init("wv", rand(d, d)),
        init("wo", rand(d, d)), init("lm", rand(d, vocab)),
        ints("heads_shape", [0, 0, h, hd]), ints("merge_shape", [0, 0, d]),
        init("cos_full", cos), init("sin_full", sin),
        ints("one", [1]), ints("two", [2]), ints("zero", [0]),
        ints("r_zero", [0]), ints("r_half", [hd // 2]), ints("r_end", [hd]), ints("r_axis", [-1]),
        init("scale", np.array(1 / np.sqrt(hd), dtype=np.float32)),
        init("neg_inf", np.array(-np.inf, dtype=np.float32)),
    ]
    return model(
        nodes,
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", seq])],
        [helper.make_tensor_value_info("logits", F32, ["B", seq, vocab]),
         helper.make_tensor_value_info("next", TensorProto.INT64, ["B", seq])],
        inits,
    )
