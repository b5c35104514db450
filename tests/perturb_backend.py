"""A test backend that is wrong at exactly one node: onnx's reference evaluator on a graph where
the named node's output gets ``delta`` added (NaN makes it return NaN), and the error propagates.

Self-contained (hwkit, numpy, onnx only) so tests can also install it as a plugin distribution
for the CLI in a subprocess (tests.helpers.make_plugin_dist)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper
from onnx.reference import ReferenceEvaluator

import hwkit
from hwkit import Backend, BackendOptions, Device, Executable, Model
from hwkit.errors import CompileError


@dataclasses.dataclass(frozen=True)
class PerturbOptions(BackendOptions):
    node: str = ""  # the node whose (first) output is perturbed; "" perturbs nothing
    delta: float = 1.0  # added to every element of that output; nan poisons it
    # Simulated compiler limits, to exercise bisect's splitting: refuse graphs with more than
    # this many outputs (0: no limit), or any graph that outputs this tensor.
    max_outputs: int = 0
    refuse: str = ""


def perturb(proto: onnx.ModelProto, node_name: str, delta: float) -> onnx.ModelProto:
    """A copy of ``proto`` where ``node_name``'s first output X becomes X + delta: the node now
    writes X__clean and a new Add(X__clean, CastLike(delta, X__clean)) writes X, so everything
    downstream, and X itself when exposed as a graph output, sees the perturbed value."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    index = next((i for i, n in enumerate(graph.node) if n.name == node_name), None)
    if index is None:
        raise CompileError(f"perturb: no node named '{node_name}' in the graph")
    target = graph.node[index]
    tensor = target.output[0]
    clean = f"{tensor}__clean"
    target.output[0] = clean
    extra = [
        helper.make_node("Constant", [], [f"{tensor}__delta"], name=f"{node_name}__delta",
                         value=helper.make_tensor("d", onnx.TensorProto.FLOAT, [], [delta])),
        helper.make_node("CastLike", [f"{tensor}__delta", clean], [f"{tensor}__cast"], name=f"{node_name}__cast"),
        helper.make_node("Add", [clean, f"{tensor}__cast"], [tensor], name=f"{node_name}__perturb"),
    ]
    for offset, node in enumerate(extra, start=1):
        graph.node.insert(index + offset, node)
    return out


class PerturbExecutable(Executable):
    def __init__(self, model: Model, device: Device, options: PerturbOptions) -> None:
        super().__init__(model, device, options)
        names = [s.name for s in model.outputs]
        if options.max_outputs and len(names) > options.max_outputs:
            raise CompileError(f"perturb: {len(names)} outputs, more than max_outputs={options.max_outputs}")
        if options.refuse and options.refuse in names:
            raise CompileError(f"perturb: cannot output '{options.refuse}'")
        proto = perturb(model.proto, options.node, options.delta) if options.node else model.proto
        self.evaluator = ReferenceEvaluator(proto)

    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [s.name for s in self.model.outputs]
        return {n: np.asarray(v) for n, v in zip(names, self.evaluator.run(names, dict(inputs)))}


class PerturbBackend(Backend):
    name = "perturb"
    Options = PerturbOptions

    def devices(self) -> list[Device]:
        return [Device("cpu", "cpu", "the reference evaluator, one node perturbed")]

    def compile(self, model: Model, device: Device, options: BackendOptions) -> Executable:
        return PerturbExecutable(model, device, options)  # type: ignore[arg-type]


@hwkit.hookimpl
def hwkit_register_backends() -> list[type]:
    return [PerturbBackend]


def chain_model(length: int = 10) -> onnx.ModelProto:
    """x -> n0 -> n1 -> ... -> y: ``length`` elementwise nodes named n0.. that keep values
    moderate (Add, Mul, Tanh, Sigmoid in turn), so a +1 anywhere shows at the output."""
    ops = ["Add", "Mul", "Tanh", "Sigmoid"]
    nodes, previous = [], "x"
    initializers = [helper.make_tensor("c", onnx.TensorProto.FLOAT, [4], [0.5, -0.25, 0.75, 1.5])]
    for i in range(length):
        op = ops[i % len(ops)]
        output = "y" if i == length - 1 else f"t{i}"
        inputs = [previous, "c"] if op in ("Add", "Mul") else [previous]
        nodes.append(helper.make_node(op, inputs, [output], name=f"n{i}"))
        previous = output
    graph = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3, 4])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
