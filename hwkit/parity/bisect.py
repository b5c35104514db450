"""Finding the first node where two backends part ways.

Intermediate tensors are exposed as extra graph outputs (which forces every backend to compute
them, whatever it would otherwise fuse away), both backends run the same inputs, and the tensors
are compared in topological order. When there are too many to expose at once, or a backend
cannot compile the graph with all of them, the node list is halved, the first half searched
before the second, so the answer is always the first diverging tensor in topological order.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from hwkit._files import finite, write_json
from hwkit.api import ModelSource
from hwkit.backend import Precision
from hwkit.errors import CompileError, ExecutionError, OptionError
from hwkit.model import Model
from hwkit.parity.agreement import OutputAgreement, compare_output
from hwkit.parity.check import RUN_BACKEND, BackendParity, CheckSettings, run_backend
from hwkit.parity.tolerance import Tolerance
from hwkit.report import tables
from hwkit.report.schema import BISECT_SCHEMA
from hwkit.runner.launch import Job, ProcessLauncher
from hwkit.runner.plan import make_input_sets, plan
from hwkit.runner.record import failure_error
from hwkit.runner.sweep import quantized_graph, row_options, rows

MAX_PROBES = 200  # extra outputs per compile; beyond this the node list is split


@dataclasses.dataclass(frozen=True)
class Probe:
    """One intermediate tensor and the node that produces it (topological index)."""

    tensor: str
    node: str
    op_type: str
    index: int


@dataclasses.dataclass(frozen=True)
class InputAgreement:
    """How one input of the diverging node agrees between the two backends."""

    name: str
    kind: str  # graph input | constant | compared | not compared
    max_abs: float | None  # None when not compared, and for constants (not observable, see below)
    passed: bool | None  # within tolerance; None when not compared or not observable
    # A constant (initializer or Constant node) is compiled into each backend: bisect sees the
    # graph's copy only, never a backend's (which may be rounded, e.g. to fp16), so it is
    # "not observable" rather than "agrees".


@dataclasses.dataclass
class BisectReport:
    """Where two backends first disagree, or that they never do beyond tolerance."""

    model: Model
    backend_a: str  # the reference side: rtol scales with its values
    backend_b: str
    tolerance: Tolerance
    inputs: str
    precision: Precision = "fp32"  # backend_b's; backend_a runs fp32 (int8: B runs hwkit's QDQ graph)
    node: str | None = None  # the first diverging node, None when every tensor agrees
    op_type: str | None = None
    node_index: int | None = None
    outputs: list[OutputAgreement] = dataclasses.field(default_factory=list)  # of that node
    node_inputs: list[InputAgreement] = dataclasses.field(default_factory=list)
    trace: list[tuple[Probe, OutputAgreement]] = dataclasses.field(default_factory=list)  # all compared
    # The graph's own outputs on the same input set, once a divergence is found: an intermediate
    # tensor may part beyond tolerance while the outputs stay within it (hwkit check passes).
    # None when not found, or when a backend could not run the plain graph.
    graph_outputs: list[OutputAgreement] | None = None
    skipped: list[str] = dataclasses.field(default_factory=list)  # tensors that could not be exposed
    rounds: int = 0  # compile + run rounds of both backends

    @property
    def found(self) -> bool:
        return self.node is not None

    @property
    def outputs_agree(self) -> bool | None:
        """Whether every graph output is within tolerance (None when they were not compared)."""
        if self.graph_outputs is None:
            return None
        return all(a.passed for a in self.graph_outputs)

    def table(self) -> Any:
        """A rich table (``hwkit.report.tables.bisect_table`` of ``to_dict()``)."""
        return tables.bisect_table(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (schema ``hwkit.bisect/1``); non-finite numbers become "inf"/"nan"."""
        return finite({
            "schema": BISECT_SCHEMA,
            "model": {"name": self.model.name, "sha256": self.model.sha256},
            "backends": [self.backend_a, self.backend_b],
            "inputs": self.inputs,
            "precision": self.precision,
            "tolerance": self.tolerance.to_dict(),
            "found": self.found,
            "node": None if not self.found else {
                "name": self.node, "op_type": self.op_type, "index": self.node_index,
                "outputs": [a.to_dict() for a in self.outputs],
                "inputs": [dataclasses.asdict(i) for i in self.node_inputs],
            },
            "graph_outputs": None if self.graph_outputs is None else [a.to_dict() for a in self.graph_outputs],
            "outputs_agree": self.outputs_agree,
            "rounds": self.rounds,
            "skipped": self.skipped,
            "trace": [{"tensor": p.tensor, "node": p.node, "op_type": p.op_type, "index": p.index,
                       "max_abs": a.max_abs, "max_rel": a.max_rel, "tol_ratio": a.tol_ratio, "passed": a.passed}
                      for p, a in self.trace],
        })

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        return write_json(self.to_dict(), path)


def bisect(
    model: ModelSource,
    backend_a: str,
    backend_b: str,
    settings: CheckSettings | None = None,
    max_probes: int = MAX_PROBES,
    isolated_rounds: bool = False,
    **overrides: Any,
) -> BisectReport:
    """The first node (in topological order) whose output differs between ``backend_a`` and
    ``backend_b`` beyond the tolerance of ``settings`` (``overrides`` replace single fields).

    Runs the first input set only (``seed``, or ``inputs``): one set is enough to locate, and
    every round compiles the graph anew. Rounds run in this process (``settings.isolation`` is
    not used): a child per backend and round costs its runtime's start-up every round (built-in
    mlp, onnxruntime vs cpu, 3 rounds: 14.8 s isolated, 2.0 s in-process). ``isolated_rounds=True``
    pays that to turn a backend's crash, hang (``settings.timeout``) or exit into its error.

    Raises:
        OptionError: the same backend twice, or bad settings.
        CompileError / ExecutionError: a backend cannot run the graph even with no extra outputs.
    """
    settings = dataclasses.replace(settings or CheckSettings(), **overrides)
    if backend_a == backend_b:
        raise OptionError(f"bisect compares two different backends, got '{backend_a}' twice; e.g. -b onnxruntime,openvino")
    if max_probes < 1:
        raise OptionError(f"max_probes must be >= 1, got {max_probes}")
    tol = settings.tolerance()
    model = plan(model, [backend_a, backend_b], reference=backend_a).model  # unknown names fail here
    # As in check: A, the reference side, runs fp32; B runs the precision (int8: hwkit's QDQ graph).
    precision = _one_precision(settings, backend_b)
    quantized = quantized_graph(model, [precision], seed=settings.seed, shapes=settings.shapes,
                                dims=settings.dims, calibration=settings.calibration)
    inputs = make_input_sets(model, shapes=settings.shapes, dims=settings.dims, seed=settings.seed,
                             given=settings.inputs)
    search = _Search(model, backend_a, backend_b, inputs.sets[:1], settings, tol, max_probes, isolated_rounds,
                     precision, quantized.model if quantized else None)
    report = BisectReport(model, backend_a, backend_b, tol, inputs.described, precision)
    probes, report.skipped = list_probes(model, search.types)
    if quantized:  # the QDQ graph keeps each original node's output name; tensors it lacks cannot be compared
        kept = {name for node in quantized.model.proto.graph.node for name in node.output}
        report.skipped += [p.tensor for p in probes if p.tensor not in kept]
        probes = [p for p in probes if p.tensor in kept]
    first = search.first_divergence(probes)
    report.rounds, report.skipped = search.rounds, report.skipped + search.unexposable
    report.trace = [(p, search.compared[p.tensor]) for p in probes if p.tensor in search.compared]
    if first is None:
        return report
    node = model.proto.graph.node[first.index]
    report.node, report.op_type, report.node_index = first.node, first.op_type, first.index
    report.outputs = [search.compared[t] for t in node.output if t in search.compared]
    report.node_inputs = [search.input_agreement(name) for name in node.input if name]
    report.graph_outputs = search.graph_outputs()
    report.rounds = search.rounds
    return report


def _one_precision(settings: CheckSettings, target: str) -> Precision:
    """The one precision ``target`` (the B side) runs.

    Raises:
        OptionError: a list of precisions, or one that the backend declares it does not run.
    """
    precisions = settings.precisions
    if len(precisions) > 1:
        raise OptionError(f"--bisect runs one precision at a time, got --precision {','.join(precisions)}; "
                          f"bisect each in turn, e.g. --precision {precisions[-1]}")
    (row,) = rows([target], precisions)
    if not row.support.supported:
        raise OptionError(f"{target} does not run {row.precision} ({row.support.unsupported}); "
                          "bisect a precision it runs, or another backend")
    return row.precision


def list_probes(model: Model, types: Mapping[str, onnx.ValueInfoProto] | None = None) -> tuple[list[Probe], list[str]]:
    """Every top-level node output in topological order (Constant nodes left out: they are the
    same everywhere), and the names skipped because no tensor type is known for them."""
    graph = model.proto.graph
    probes, skipped = [], []
    types = _value_types(model.proto) if types is None else types
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            continue  # a constant is the same in every backend; exposing it costs a probe
        for tensor in node.output:
            if not tensor:
                continue
            if tensor not in types:
                skipped.append(tensor)
                continue
            probes.append(Probe(tensor, node.name or f"#{index}", node.op_type, index))
    return probes, skipped


def expose(model: Model, tensors: Sequence[str], types: Mapping[str, onnx.ValueInfoProto] | None = None) -> Model:
    """A copy of ``model`` whose graph also outputs ``tensors`` (types from shape inference,
    or ``types`` as ``list_probes`` used them)."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    present = {o.name for o in proto.graph.output}
    types = _value_types(model.proto) if types is None else types
    for name in tensors:
        if name not in present:
            proto.graph.output.append(types[name])
    # The user's model name: it is what every backend's messages quote.
    return Model(proto, name=model.name, default_dims=model.default_dims)


class _Search:
    """Runs both backends on exposed graphs and remembers every tensor compared."""

    def __init__(self, model: Model, a: str, b: str, input_sets: list[dict[str, np.ndarray]],
                 settings: CheckSettings, tol: Tolerance, max_probes: int, isolated: bool = False,
                 precision: Precision = "fp32", model_b: Model | None = None) -> None:
        self.model, self.a, self.b, self.input_sets, self.isolated = model, a, b, input_sets, isolated
        self.precision, self.model_b = precision, model_b  # model_b: B's own graph (int8), else the same
        self.settings, self.tol, self.max_probes = settings, tol, max_probes
        self.types = _value_types(model.proto)  # inferred once: every round reuses them
        self.compared: dict[str, OutputAgreement] = {}
        self.unexposable: list[str] = []
        self.rounds = 0
        self._baseline_ok = False

    def first_divergence(self, probes: list[Probe]) -> Probe | None:
        """The first probe beyond tolerance; halves the list when too long or when it fails."""
        if not probes:
            return None
        if len(probes) > self.max_probes:
            return self._halves(probes)
        try:
            outputs_a, outputs_b = self._run(probes)
        except CompileError:
            self._check_baseline()  # a graph neither backend compiles is an error, not a split
            if len(probes) == 1:
                # Only this tensor breaks compilation: a backend cannot expose it, go on without it.
                self.unexposable.append(probes[0].tensor)
                return None
            return self._halves(probes)
        first = None
        for probe in probes:
            if probe.tensor in outputs_a and probe.tensor in outputs_b:  # only what both return
                agreement = compare_output(probe.tensor, outputs_a[probe.tensor], outputs_b[probe.tensor], self.tol)
                self.compared[probe.tensor] = agreement
                if first is None and not agreement.passed:
                    first = probe
        return first

    def _check_baseline(self) -> None:
        """Raise the backend's own error if the graph fails to compile even with no probes."""
        if not self._baseline_ok:
            self._run([])
            self._baseline_ok = True

    def _halves(self, probes: list[Probe]) -> Probe | None:
        middle = len(probes) // 2
        return self.first_divergence(probes[:middle]) or self.first_divergence(probes[middle:])

    def _run(self, probes: list[Probe]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        tensors = [p.tensor for p in probes]
        exposed = expose(self.model, tensors, self.types)
        self.rounds += 1
        a = self._one(exposed, self.a, "fp32")
        b = self._one(expose(self.model_b, tensors, self.types) if self.model_b else exposed, self.b, self.precision)
        return (a.outputs or [{}])[0], (b.outputs or [{}])[0]

    def _one(self, exposed: Model, target: str, precision: Precision) -> BackendParity:
        """One backend on one round's graph; its failure is raised as the hwkit error it was, so
        that the search can tell a graph a backend cannot compile (split) from a broken backend."""
        options = row_options(target, self.settings.options, precision)
        # The probes' declared types come from best-effort shape inference: not checked.
        arguments: dict[str, Any] = {"input_sets": self.input_sets, "threads": self.settings.threads, "options": options,
                     "check_declared": False}
        if not self.isolated:
            return run_backend(exposed, target, BackendParity(target), **arguments)
        # A child per round and backend: a crash, hang or exit is this backend's error, not bisect's end.
        record = BackendParity(target)
        ProcessLauncher().launch(Job(RUN_BACKEND, exposed, target, record, arguments,
                                     threads=self.settings.threads, timeout=self.settings.timeout))
        if record.status != "ok":
            raise failure_error(record, record.error if record.error_type else f"{target}: {record.error}")
        return record

    def graph_outputs(self) -> list[OutputAgreement] | None:
        """Every graph output compared (from the probes, or from one more round of the plain
        graph for those not compared yet); None when a backend cannot run the plain graph."""
        names = [o.name for o in self.model.proto.graph.output]
        missing = [n for n in names if n not in self.compared]
        if missing:
            try:
                outputs_a, outputs_b = self._run([])
            except (CompileError, ExecutionError):
                return None  # the divergence found still stands; the outputs stay unknown
            for n in missing:
                if n in outputs_a and n in outputs_b:
                    self.compared[n] = compare_output(n, outputs_a[n], outputs_b[n], self.tol)
        return [self.compared[n] for n in names if n in self.compared]

    def input_agreement(self, name: str) -> InputAgreement:
        graph = self.model.proto.graph
        if name in {i.name for i in graph.initializer} or name in _constant_outputs(graph):
            return InputAgreement(name, "constant", None, None)
        if name in {i.name for i in graph.input}:
            return InputAgreement(name, "graph input", 0.0, True)  # both backends got the same array
        if name in self.compared:
            agreement = self.compared[name]
            return InputAgreement(name, "compared", agreement.max_abs, agreement.passed)
        return InputAgreement(name, "not compared", None, None)


def _constant_outputs(graph: onnx.GraphProto) -> set[str]:
    return {o for n in graph.node if n.op_type == "Constant" for o in n.output}


def _value_types(proto: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """Tensor value infos by name, from shape inference; an unknown shape keeps just the
    element type. Non-tensor values (sequences, maps) and unknown element types are left out."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError):
        inferred = proto  # inference is best effort: the graph's own value_info still counts
    found = {}
    for info in [*inferred.graph.value_info, *inferred.graph.output, *proto.graph.value_info]:
        if info.name in found or info.type.WhichOneof("value") != "tensor_type":
            continue
        if info.type.tensor_type.elem_type == onnx.TensorProto.UNDEFINED:
            continue
        if info.type.tensor_type.HasField("shape"):
            found[info.name] = info
        else:
            found[info.name] = onnx.helper.make_tensor_value_info(info.name, info.type.tensor_type.elem_type, None)
    return found
