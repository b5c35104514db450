"""``encoder``: a BERT-like encoder. Token embeddings (a Gather on an initializer, so generated
ids stay inside the table) plus position embeddings, LayerNorm, then post-norm layers of 4-head
softmax self-attention and a GELU MLP (GELU written with Erf, exactly as BERT defines it)."""

from __future__ import annotations

import math

import numpy as np
import onnx

from hwkit.model.zoo._graph import FLOAT, INT64, Graph

SUMMARY = "BERT-like encoder: 4 layers, hidden 256, 4 heads, sequence 128"
VOCAB, SEQ_LEN, HIDDEN, HEADS, LAYERS, FF = 8192, 128, 256, 4, 4, 1024


def build(version: int) -> onnx.ModelProto:
    g = Graph("encoder", seed=3)
    head = HIDDEN // HEADS
    tokens = g.constant("embeddings.tokens", g.weights.spread((VOCAB, HIDDEN), 1.0))
    positions = g.constant("embeddings.positions", g.weights.spread((1, SEQ_LEN, HIDDEN), 0.1))
    g.constant("split_heads", np.array([0, 0, HEADS, head], np.int64))  # 0: keep that axis's size
    g.constant("merge_heads", np.array([0, 0, HIDDEN], np.int64))
    g.constant("scale", np.array(1.0 / math.sqrt(head), np.float32))
    g.constant("half", np.array(0.5, np.float32))
    g.constant("one", np.array(1.0, np.float32))
    g.constant("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), np.float32))
    x = g.op("Gather", [tokens, "input_ids"], "embeddings.gather")
    x = _layer_norm(g, g.op("Add", [x, positions], "embeddings.add"), "embeddings.norm")
    for i in range(LAYERS):
        x = _layer(g, x, f"layer{i}", "hidden_states" if i == LAYERS - 1 else f"layer{i}")
    return g.model([("input_ids", INT64, ["batch", SEQ_LEN])],
                   [("hidden_states", FLOAT, ["batch", SEQ_LEN, HIDDEN])], SUMMARY, version)


def _layer(g: Graph, x: str, name: str, output: str) -> str:
    qkv = g.linear(x, f"{name}.attention.qkv", HIDDEN, 3 * HIDDEN)
    q, k, v = g.ops("Split", [qkv], [f"{name}.attention.{p}" for p in "qkv"], axis=2)
    q, k, v = (g.op("Reshape", [t, "split_heads"], f"{t}.heads") for t in (q, k, v))
    q = g.op("Transpose", [q], f"{q}.t", perm=[0, 2, 1, 3])  # (batch, heads, seq, head)
    k = g.op("Transpose", [k], f"{k}.t", perm=[0, 2, 3, 1])  # (batch, heads, head, seq)
    v = g.op("Transpose", [v], f"{v}.t", perm=[0, 2, 1, 3])
    scores = g.op("Mul", [g.op("MatMul", [q, k], f"{name}.attention.scores"), "scale"], f"{name}.attention.scaled")
    weights = g.op("Softmax", [scores], f"{name}.attention.softmax", axis=-1)
    att = g.op("Transpose", [g.op("MatMul", [weights, v], f"{name}.attention.context")],
               f"{name}.attention.context.t", perm=[0, 2, 1, 3])
    att = g.op("Reshape", [att, "merge_heads"], f"{name}.attention.merged")
    att = g.linear(att, f"{name}.attention.out", HIDDEN, HIDDEN)
    x = _layer_norm(g, g.op("Add", [x, att], f"{name}.attention.residual"), f"{name}.attention.norm")
    hidden = g.linear(x, f"{name}.ff1", HIDDEN, FF)
    erf = g.op("Erf", [g.op("Mul", [hidden, "inv_sqrt2"], f"{name}.gelu.scaled")], f"{name}.gelu.erf")
    gate = g.op("Mul", [g.op("Add", [erf, "one"], f"{name}.gelu.shift"), "half"], f"{name}.gelu.gate")
    hidden = g.op("Mul", [hidden, gate], f"{name}.gelu")  # x * 0.5 * (1 + erf(x / sqrt 2))
    out = g.linear(hidden, f"{name}.ff2", FF, HIDDEN)
    return _layer_norm(g, g.op("Add", [x, out], f"{name}.ff.residual"), f"{name}.ff.norm", output)


def _layer_norm(g: Graph, x: str, name: str, output: str | None = None) -> str:
    gamma = g.constant(f"{name}.weight", g.weights.uniform((HIDDEN,), 0.8, 1.2))
    beta = g.constant(f"{name}.bias", g.weights.uniform((HIDDEN,), -0.1, 0.1))
    return g.op("LayerNormalization", [x, gamma, beta], output or name, axis=-1, epsilon=1e-5)
