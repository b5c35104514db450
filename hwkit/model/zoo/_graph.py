"""What the built-in models are built with: seeded weights that are the same bytes on every
machine, and a small ONNX graph writer over ``onnx.helper``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization's first opset; every runtime hwkit ships supports it
IR_VERSION = 8  # the IR of opset 17, fixed so that the bytes do not follow the installed onnx


class Weights:
    """Uniform draws built from PCG64's raw 64-bit output (stable by NumPy's policy, unlike its
    distributions, which may change between releases) with exact float arithmetic: the same
    seed gives the same bytes, hence the same sha256, everywhere."""

    def __init__(self, seed: int) -> None:
        self._bits = np.random.PCG64(seed)

    def uniform(self, shape: Sequence[int], low: float, high: float) -> np.ndarray:
        raw = self._bits.random_raw(math.prod(shape))
        unit = (raw >> np.uint64(40)).astype(np.float64) * 2.0**-24  # 24 bits: exact in float64
        return (low + (high - low) * unit).astype(np.float32).reshape(tuple(shape))

    def spread(self, shape: Sequence[int], std: float) -> np.ndarray:
        """Zero-mean uniform values with standard deviation ``std``."""
        bound = math.sqrt(3.0) * std
        return self.uniform(shape, -bound, bound)


class Graph:
    """Nodes and initializers in the order they are added; names are the layers' own."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.weights = Weights(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], output: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attributes))
        return output

    def ops(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], **attributes: Any) -> list[str]:
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=outputs[0], **attributes))
        return list(outputs)

    def linear(self, x: str, name: str, fan_in: int, fan_out: int, gain: float = 1.0) -> str:
        """x @ W + b over the last axis: MatMul and Add, as exporters write nn.Linear on 3-D input.
        LeCun-like weights (std gain/sqrt(fan_in)) keep activations near unit scale."""
        weight = self.constant(f"{name}.weight", self.weights.spread((fan_in, fan_out), gain / math.sqrt(fan_in)))
        bias = self.constant(f"{name}.bias", self.weights.spread((fan_out,), 0.1))
        return self.op("Add", [self.op("MatMul", [x, weight], f"{name}.matmul"), bias], name)

    def model(
        self,
        inputs: Sequence[tuple[str, int, Sequence[int | str]]],
        outputs: Sequence[tuple[str, int, Sequence[int | str]]],
        summary: str,
        version: int,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(n, dtype, list(shape)) for n, dtype, shape in inputs],
            [helper.make_tensor_value_info(n, dtype, list(shape)) for n, dtype, shape in outputs],
            self.initializers,
        )
        proto = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hwkit",
            producer_version=f"zoo{version}", doc_string=summary,
        )
        proto.ir_version = IR_VERSION
        onnx.checker.check_model(proto, full_check=True)  # a builder bug fails here, not in a runtime
        return proto


FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
