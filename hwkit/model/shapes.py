"""How large a run's tensors are: every value's shape once the inputs are sized (onnx shape
inference), and whether the input sets and outputs fit in the memory available, checked before
anything is allocated."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import onnx
import psutil

from hwkit.errors import InputMemoryError
from hwkit.model.external import PARSE_ERRORS
from hwkit.model.specs import TensorSpec

Shape = tuple[int | None, ...]  # None: an axis whose size is not known
MEMORY_SHARE = 0.8  # the most of the available memory inputs and outputs may take; the rest is the runtimes'
_INLINE_FOR_INFERENCE = 1 << 12  # initializers up to this many elements keep their values (Reshape targets)


@dataclasses.dataclass(frozen=True)
class GraphSizes:
    """Every value's shape and element size in bytes, once the inputs are sized. A value whose
    rank shape inference cannot tell is absent; an axis it cannot size is None (never guessed)."""

    shapes: dict[str, Shape]
    itemsizes: dict[str, int]

    def nbytes(self, name: str) -> int | None:
        shape, item = self.shapes.get(name), self.itemsizes.get(name)
        if shape is None or item is None or any(d is None for d in shape):
            return None
        return math.prod(d for d in shape if d is not None) * item

    def peak_intermediates(self, graph: onnx.GraphProto) -> int:
        """The most bytes of intermediate tensors alive at once when ``graph``'s nodes run in
        order, each freed after its last use (the graph's inputs, outputs and weights are
        counted apart). Runtimes that reuse freed buffers hold about this much; fusing nodes
        holds less, arenas and scratch space more (onnxruntime: several times more)."""
        apart = {v.name for v in (*graph.input, *graph.output, *graph.initializer)}
        last_use = {name: step for step, node in enumerate(graph.node) for name in node.input}
        alive: dict[str, int] = {}
        peak = 0
        for step, node in enumerate(graph.node):
            alive.update({n: self.nbytes(n) or 0 for n in node.output if n and n not in apart})
            peak = max(peak, sum(alive.values()))
            for name in [*node.input, *node.output]:
                if name in alive and last_use.get(name, step) <= step:
                    del alive[name]
        return peak


def infer_shapes(proto: onnx.ModelProto, inputs: Mapping[str, tuple[int, ...]]) -> GraphSizes:
    """Every value's size once the graph's inputs have the ``inputs`` shapes: onnx shape
    inference (with data propagation) on a copy whose large weights are declared, not copied."""
    light = onnx.ModelProto(ir_version=proto.ir_version)
    light.opset_import.extend(proto.opset_import)
    light.functions.extend(proto.functions)
    graph = light.graph
    graph.node.extend(proto.graph.node)
    declared = {v.name for v in proto.graph.input}
    for value in proto.graph.input:
        copy = graph.input.add()
        copy.CopyFrom(value)
        if value.name in inputs and copy.type.HasField("tensor_type"):
            copy.type.tensor_type.ClearField("shape")
            copy.type.tensor_type.shape.SetInParent()
            for size in inputs[value.name]:
                copy.type.tensor_type.shape.dim.add().dim_value = size
    for tensor in proto.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL and math.prod(tensor.dims) <= _INLINE_FOR_INFERENCE:
            graph.initializer.add().CopyFrom(tensor)
        elif tensor.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    for sparse in proto.graph.sparse_initializer:
        if sparse.values.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(sparse.values.name, sparse.values.data_type,
                                                                  list(sparse.dims)))
    for value in proto.graph.output:  # the declared output shapes would only be merged, not replaced
        copy = graph.output.add()
        copy.CopyFrom(value)
        if copy.type.HasField("tensor_type"):
            copy.type.tensor_type.ClearField("shape")
    try:
        light = onnx.shape_inference.infer_shapes(light, data_prop=True)
    except (onnx.shape_inference.InferenceError, *PARSE_ERRORS):
        pass  # what inference cannot size stays unknown; the callers then assume nothing about it
    shapes: dict[str, Shape] = {t.name: tuple(t.dims) for t in proto.graph.initializer}
    itemsizes = {t.name: _itemsize(t.data_type) for t in proto.graph.initializer}
    graphs = [light.graph]
    while graphs:
        current = graphs.pop()
        for weight in current.initializer:  # a subgraph's own weights (the main graph's are in already)
            shapes.setdefault(weight.name, tuple(weight.dims))
            itemsizes.setdefault(weight.name, _itemsize(weight.data_type))
        for value in (*current.input, *current.value_info, *current.output):
            tensor = value.type.tensor_type
            if value.type.HasField("tensor_type"):
                itemsizes[value.name] = _itemsize(tensor.elem_type)
                if tensor.HasField("shape"):
                    shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                               for d in tensor.shape.dim)
        graphs.extend(attr.g for node in current.node for attr in node.attribute if attr.HasField("g"))
        graphs.extend(g for node in current.node for attr in node.attribute for g in attr.graphs)
    known = {name: size for name, size in itemsizes.items() if size is not None}
    return GraphSizes({**shapes, **inputs}, known)


def _itemsize(elem_type: int) -> int | None:
    try:
        return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)
    except (KeyError, ValueError, TypeError):
        return None  # an undefined or exotic element type: its bytes are not counted


def check_memory(
    what: str,
    specs: Sequence[TensorSpec],
    shapes: Mapping[str, tuple[int, ...]],
    sizes: Callable[[], tuple[GraphSizes, onnx.GraphProto]],
    outputs: Sequence[TensorSpec],
    sets: int = 1,
    explicit: Sequence[str] = (),
    flags: Mapping[str, str] | None = None,
) -> None:
    """Refuse, before anything is allocated, a run that cannot fit in memory: ``sets`` input
    sets, one set of outputs and the intermediate tensors alive at once (as far as ``sizes``,
    called only when the inputs alone fit, can size them) must stay within MEMORY_SHARE of what
    is available. This is a floor, not a forecast: runtimes add weights, arenas and scratch.

    Raises:
        InputMemoryError: naming the sizes, the bytes, and the flag to lower: the largest
            dimension's ``--dim`` (or its flag in ``flags``, e.g. ``--batch``), or ``--shape``
            of the largest input in ``explicit`` (given whole by the caller).
    """
    counts = {s.name: (math.prod(shapes[s.name]), np.dtype(s.dtype).itemsize) for s in specs}
    limit = int(np.iinfo(np.intp).max)
    # numpy refuses an array whose non-empty axes multiply past intp, even beside an empty one
    huge = [s.name for s in specs if math.prod(d for d in shapes[s.name] if d) * counts[s.name][1] > limit]
    need = sets * sum(count * item for count, item in counts.values())
    available = available_memory()
    counted = [f"{sets} input sets" if sets > 1 else "inputs"]
    if not huge and need <= available * MEMORY_SHARE:
        graph_sizes, graph = sizes()
        out = [graph_sizes.nbytes(o.name) for o in outputs if o.kind == "tensor"]
        held = graph_sizes.peak_intermediates(graph)
        need += sum(n for n in out if n is not None) + held
        counted += ["outputs"] * any(n is not None for n in out) + ["intermediate tensors"] * bool(held)
        if need <= available * MEMORY_SHARE:
            return
    named: dict[str, int] = {}
    whole: dict[str, str] = {}
    for spec in specs:
        shape = shapes[spec.name]
        if spec.name in explicit or spec.shape is None or any(d is None or d == "" for d in spec.shape):
            whole[spec.name] = "x".join(map(str, shape))
        else:
            named.update({d: size for d, size in zip(spec.shape, shape) if isinstance(d, str)})
    # The flag to lower: the one that sized the largest input (its largest named axis).
    largest = huge[0] if huge else max(counts, key=lambda n: counts[n][0] * counts[n][1], default="")
    biggest = next((s for s in specs if s.name == largest), None)
    axes = {d: n for d, n in zip(biggest.shape or (), shapes[largest]) if isinstance(d, str) and d and n > 1} \
        if biggest else {}
    fix = f"--shape {largest}" if largest in whole else None
    if fix is None and axes:
        dim = max(axes, key=lambda d: axes[d])
        fix = (flags or {}).get(dim, f"--dim {dim}")
    remedies = [f"lower {fix}"] * bool(fix) + ["use fewer input sets"] * (sets > 1)
    advice = " or ".join(remedies or ["run it where more memory is free"])
    at = ", ".join([f"{d}={n}" for d, n in named.items()] + [f"{n}={s}" for n, s in whole.items()])
    at = f" at {at}" if at else ""
    if huge:
        raise InputMemoryError(f"input '{huge[0]}' of {what}{at} would be larger than any array can be "
                               f"(over {_size(limit)}); {advice}", need, available)
    verdict = (f"more than the {_size(available)} available" if need > available else
               f"too much of the {_size(available)} available (hwkit leaves "
               f"{100 - round(MEMORY_SHARE * 100)}% to the runtimes)")
    raise InputMemoryError(f"a run of {what}{at} needs at least {_size(need)} ({', '.join(counted)}), {verdict}; "
                           f"{advice}", need, available)


def available_memory() -> int:
    """Bytes of memory the system can give without swapping."""
    return int(psutil.virtual_memory().available)


def _size(count: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    power = 0
    while count >= 1024 and power < len(units) - 1:
        count, power = count / 1024, power + 1
    return f"{count:.1f} {units[power]}" if count < 1e4 else f"{count:.3g} {units[power]}"
