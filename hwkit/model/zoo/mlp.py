"""``mlp``: 784-128-10, Linear, ReLU, Linear (Gemm nodes, weights stored out x in as torch does)."""

from __future__ import annotations

import math

import onnx

from hwkit.model.zoo._graph import FLOAT, Graph

SUMMARY = "784-128-10 MLP (Linear, ReLU, Linear)"


def build(version: int) -> onnx.ModelProto:
    g = Graph("mlp", seed=1)
    x = "x"
    for i, (fan_in, fan_out) in enumerate([(784, 128), (128, 10)]):
        gain = math.sqrt(2.0) if i == 0 else 1.0  # Kaiming before the ReLU, LeCun for the logits
        weight = g.constant(f"fc{i}.weight", g.weights.spread((fan_out, fan_in), gain / math.sqrt(fan_in)))
        bias = g.constant(f"fc{i}.bias", g.weights.spread((fan_out,), 0.1))
        x = g.op("Gemm", [x, weight, bias], "logits" if i == 1 else f"fc{i}", transB=1)
        if i == 0:
            x = g.op("Relu", [x], "relu0")
    return g.model([("x", FLOAT, ["batch", 784])], [("logits", FLOAT, ["batch", 10])], SUMMARY, version)
