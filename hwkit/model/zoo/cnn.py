"""``cnn``: ResNet-18's layout (a 7x7 stem, four stages of two basic blocks, global pooling, 1000
classes), with each BatchNorm folded into its convolution as exporters do for inference.

The BatchNorm statistics folded in are non-trivial (scales 0.5-1.5, shifts and means +-0.1,
variances 0.5-1.5), so every Conv carries a real bias; weights are Kaiming-uniform, the last
BatchNorm of each residual branch is scaled down (as in Fixup/SkipInit) so the activations stay
near unit scale through eight residual additions.
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from hwkit.model.zoo._graph import FLOAT, Graph

SUMMARY = "ResNet-18-like CNN, 3x224x224 images"
WIDTHS = (64, 128, 256, 512)
CLASSES = 1000
EPS = 1e-5


def build(version: int) -> onnx.ModelProto:
    g = Graph("cnn", seed=2)
    x = _conv_bn(g, "x", "stem", 3, 64, 7, 2)
    x = g.op("Relu", [x], "stem.relu")
    x = g.op("MaxPool", [x], "stem.pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, width in enumerate(WIDTHS):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(g, x, f"stage{stage}.block{block}", cin, width, stride)
            cin = width
    x = g.op("GlobalAveragePool", [x], "pool")
    x = g.op("Flatten", [x], "flatten", axis=1)
    weight = g.constant("fc.weight", g.weights.spread((CLASSES, cin), 1.0 / math.sqrt(cin)))
    bias = g.constant("fc.bias", g.weights.spread((CLASSES,), 0.1))
    g.op("Gemm", [x, weight, bias], "logits", transB=1)
    return g.model([("x", FLOAT, ["batch", 3, 224, 224])], [("logits", FLOAT, ["batch", CLASSES])], SUMMARY, version)


def _basic_block(g: Graph, x: str, name: str, cin: int, cout: int, stride: int) -> str:
    y = g.op("Relu", [_conv_bn(g, x, f"{name}.conv1", cin, cout, 3, stride)], f"{name}.relu1")
    y = _conv_bn(g, y, f"{name}.conv2", cout, cout, 3, 1, branch_end=True)
    shortcut = _conv_bn(g, x, f"{name}.down", cin, cout, 1, stride) if stride != 1 or cin != cout else x
    return g.op("Relu", [g.op("Add", [y, shortcut], f"{name}.add")], f"{name}.relu2")


def _conv_bn(g: Graph, x: str, name: str, cin: int, cout: int, kernel: int, stride: int,
             branch_end: bool = False) -> str:
    fan_in = cin * kernel * kernel
    weight = g.weights.spread((cout, cin, kernel, kernel), math.sqrt(2.0 / fan_in)).astype(np.float64)
    low, high = (0.1, 0.3) if branch_end else (0.5, 1.5)
    gamma = g.weights.uniform((cout,), low, high).astype(np.float64)
    beta = g.weights.uniform((cout,), -0.1, 0.1).astype(np.float64)
    mean = g.weights.uniform((cout,), -0.1, 0.1).astype(np.float64)
    var = g.weights.uniform((cout,), 0.5, 1.5).astype(np.float64)
    scale = gamma / np.sqrt(var + EPS)  # float64, then rounded once: the same bytes everywhere
    folded = g.constant(f"{name}.weight", (weight * scale[:, None, None, None]).astype(np.float32))
    bias = g.constant(f"{name}.bias", (beta - mean * scale).astype(np.float32))
    pad = kernel // 2
    return g.op("Conv", [x, folded, bias], name, kernel_shape=[kernel, kernel], strides=[stride, stride],
                pads=[pad, pad, pad, pad])
