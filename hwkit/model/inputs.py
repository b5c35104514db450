"""Seeded, realistic input arrays generated from a model's signature.

Never zeros: constant inputs can run faster than real data and hide outputs that were never
written. Integer inputs stay inside the range the graph indexes with them (``index_ranges``:
Gather, GatherND, Scatter*, OneHot ... on the sizes the resolved shapes give), and masks are
all ones so no attention row is fully masked.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import ml_dtypes
import numpy as np
import onnx
from onnx import numpy_helper

from hwkit.model.external import PARSE_ERRORS
from hwkit.model.shapes import Shape
from hwkit.model.specs import TensorSpec

DEFAULT_INT_HIGH = 10  # exclusive upper bound for integers nothing else tells us about


# -- generating -------------------------------------------------------------------------------

def generate_inputs(
    specs: Sequence[TensorSpec],
    shapes: Mapping[str, tuple[int, ...]],
    seed: int = 0,
    ranges: Mapping[str, IndexRange] | None = None,
) -> dict[str, np.ndarray]:
    """One array per input, of the resolved ``shapes``; the same seed gives the same arrays.

    Each input draws from its own stream (seed, position), so adding an input does not change
    the others. ``ranges`` (from ``index_ranges``) bounds the inputs the graph indexes with.
    """
    ranges = ranges or {}
    arrays: dict[str, np.ndarray] = {}
    for index, spec in enumerate(specs):
        rng = np.random.default_rng([seed, index])
        shape = shapes[spec.name]
        dtype = np.dtype(spec.dtype)
        bound = ranges.get(spec.name)
        floating = dtype.kind == "f" or dtype.name == "bfloat16" or dtype.name.startswith("float8")
        if dtype == np.bool_:
            array = rng.random(shape) < 0.5
        elif np.issubdtype(dtype, np.integer) or (floating and bound is not None):
            # A float cast to an index gets whole numbers: the values it must hold after the Cast.
            largest = int(np.iinfo(dtype).max) if dtype.kind in "iu" else 2 ** (ml_dtypes.finfo(dtype).nmant + 1)
            if "mask" in spec.name.lower() and (bound is None or bound.low <= 1 < bound.high_or(2)):
                array = np.ones(shape, dtype=dtype)
            else:
                array = (bound or IndexRange()).draw(rng, shape, largest + 1).astype(dtype)
        elif floating:
            array = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
        elif dtype.kind == "c":
            array = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
        else:
            array = rng.integers(0, 2, size=shape).astype(dtype)
        arrays[spec.name] = np.asarray(array)
    return arrays


# -- which values the graph can index with ----------------------------------------------------

@dataclasses.dataclass
class IndexRange:
    """Where an input's values must lie for the graph to index with them (``low`` to ``high``,
    exclusive; ``columns``: a ``high`` per position on the last axis, as GatherND reads it)."""

    low: int = 0
    high: int | None = None  # None: nothing known, DEFAULT_INT_HIGH
    columns: tuple[int | None, ...] | None = None
    unique_axis: int | None = None  # no repeats along this axis (ScatterElements writes each once)
    unique_rows: bool = False  # no repeated index tuple on the last axis (ScatterND)

    def high_or(self, default: int) -> int:
        return default if self.high is None else self.high

    def merge(self, other: IndexRange) -> IndexRange:
        """Both constraints at once (an input indexing two tensors stays inside the smaller)."""
        columns = self.columns or other.columns
        if self.columns and other.columns:
            columns = (tuple(_least(a, b) for a, b in zip(self.columns, other.columns))
                       if len(self.columns) == len(other.columns) else None)
        high = _least(self.high, other.high)
        if (self.columns and other.columns) and columns is None:
            high = _least(high, *self.columns, *other.columns)
        return IndexRange(max(self.low, other.low), high, columns,
                          self.unique_axis if self.unique_axis is not None else other.unique_axis,
                          self.unique_rows or other.unique_rows)

    def loose(self) -> IndexRange:
        """What still holds once the values have moved (Reshape, Concat ...): the bounds only."""
        return IndexRange(self.low, _least(self.high, *(self.columns or ())))

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...], cap: int) -> np.ndarray:
        """Integers inside the range (below ``cap``, the dtype's limit), seeded by ``rng``."""
        high = min(self.high_or(DEFAULT_INT_HIGH), cap)
        low = self.low if self.low < high else 0
        if self.columns and shape and shape[-1] == len(self.columns):
            highs = [min(self.high_or(cap), cap, DEFAULT_INT_HIGH if c is None else c) for c in self.columns]
            rows, space = math.prod(shape[:-1]), math.prod(highs)
            if self.unique_rows and 0 < rows <= space and min(highs) > 0:
                flat = rng.choice(space, size=rows, replace=False)
                return np.stack(np.unravel_index(flat, highs), axis=-1).reshape(shape)
            return rng.integers(low, np.maximum(np.array(highs), low + 1), size=shape)
        axis = self.unique_axis
        if axis is not None and -len(shape) <= axis < len(shape) and 0 < shape[axis] <= high - low:
            # A random permutation of [low, high) along the axis, cut to its length; the keys
            # are (high - low) / length times the array: beyond 64 MB, repeats (now unlikely) stay.
            wide = (*shape[:axis % len(shape)], high - low, *shape[axis % len(shape) + 1:])
            if math.prod(wide) <= 1 << 23:
                order = np.argsort(rng.random(wide), axis=axis)
                return low + np.take(order, np.arange(shape[axis]), axis=axis)
        return rng.integers(low, high, size=shape)


def _least(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


# Ops whose output holds only values of the given input positions (None: every input), so an
# index bound seen after them holds for the input; the first set also keeps the shape.
_ELEMENTWISE: dict[str, tuple[int, ...] | None] = {"Cast": (0,), "CastLike": (0,), "Identity": (0,),
                                                   "Abs": (0,)}
_MOVING: dict[str, tuple[int, ...] | None] = {
    "Reshape": (0,), "Flatten": (0,), "Squeeze": (0,), "Unsqueeze": (0,), "Transpose": (0,), "Expand": (0,),
    "Tile": (0,), "Slice": (0,), "Split": (0,), "Concat": None, "Gather": (0,), "GatherElements": (0,),
    "GatherND": (0,), "Where": (1, 2), "Max": None, "Min": None, "ReduceMax": (0,), "ReduceMin": (0,),
    "Clip": (0,),
}


def index_ranges(
    graph: onnx.GraphProto, specs: Sequence[TensorSpec], shapes: Mapping[str, Shape]
) -> dict[str, IndexRange]:
    """For each input the graph indexes with (also after a Cast, Reshape, Concat ...), the range
    its values must lie in, from the sizes in ``shapes`` (every value's shape, ``infer_shapes``).

    Where the indexed size is unknown, nothing is returned for that use, so the default
    ``[0, DEFAULT_INT_HIGH)`` applies. Negative indices are valid ONNX, but never generated.
    """
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in _all_nodes(graph):
        for position, name in enumerate(node.input):
            if name:
                consumers.setdefault(name, []).append((node, position))
    constant = _constants(graph)
    ranges: dict[str, IndexRange] = {}
    for spec in specs:
        found: IndexRange | None = None
        stack, seen = [(spec.name, True)], set()
        while stack:
            name, exact = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            for node, position in consumers.get(name, ()):
                rule = _index_rule(node, position, shapes, constant)
                if rule is not None:
                    rule = rule if exact else rule.loose()
                    found = rule if found is None else found.merge(rule)
                for table, keeps_shape in ((_ELEMENTWISE, True), (_MOVING, False)):
                    passes = table.get(node.op_type, ()) if node.domain in _STANDARD else ()
                    if passes is None or position in passes:
                        stack.extend((out, exact and keeps_shape) for out in node.output if out)
        if found is not None and (found.high is not None or found.columns):
            ranges[spec.name] = found
    return ranges


def _index_rule(node: onnx.NodeProto, position: int, shapes: Mapping[str, Shape],
                constant: Callable[[str], np.ndarray | None]) -> IndexRange | None:
    """The range ``node`` needs in its input ``position``, or None if it indexes nothing there."""
    op, inputs = node.op_type, node.input
    if node.domain not in _STANDARD:
        op = f"{node.domain}.{op}"

    def attr(name: str, default: int) -> int:
        found = next((a for a in node.attribute if a.name == name), None)
        return default if found is None else int(found.i)

    def dim(name: str, axis: int) -> int | None:
        shape = shapes.get(name)
        if shape is None or not -len(shape) <= axis < len(shape):
            return None
        size = shape[axis]
        return size if size else None  # an empty axis bounds nothing that can run

    reduction = next((a.s for a in node.attribute if a.name == "reduction"), b"none")
    unique = reduction == b"none"  # with a reduction, repeated indices are defined
    if position == 1 and op in ("Gather", "GatherElements", "ScatterElements", "Scatter"):
        axis = attr("axis", 0)
        return IndexRange(high=dim(inputs[0], axis),
                          unique_axis=axis if op.startswith("Scatter") and unique else None)
    if position == 1 and op in ("GatherND", "ScatterND"):
        first = attr("batch_dims", 0)  # ScatterND has none
        data, indices = shapes.get(inputs[0]), shapes.get(inputs[1])
        if data is None or not indices or indices[-1] is None:
            return None
        columns = tuple(dim(inputs[0], first + j) if first + j < len(data) else None for j in range(indices[-1]))
        return IndexRange(columns=columns, unique_rows=op == "ScatterND" and unique)
    if position == 0 and op == "OneHot":
        depth = constant(inputs[1])
        if depth is None or depth.size != 1 or not np.isfinite(depth).all() or depth.reshape(-1)[0] < 1:
            return None
        return IndexRange(high=int(depth.reshape(-1)[0]))
    if position == 2 and op == "RoiAlign":  # batch_indices
        return IndexRange(high=dim(inputs[0], 0))
    if position == 1 and op == "ReverseSequence":  # sequence_lens: 1 ... the time axis' length
        length = dim(inputs[0], attr("time_axis", 0))
        return IndexRange(low=1, high=None if length is None else length + 1)
    if position == 1 and op == "TopK":  # K: at most the axis' length
        length = dim(inputs[0], attr("axis", -1))
        return IndexRange(low=1, high=None if length is None else length + 1)
    if op == "com.microsoft.EmbedLayerNormalization" and position in (0, 1) and len(inputs) > 4:
        return IndexRange(high=dim(inputs[2 if position == 0 else 4], 0))  # word / segment table rows
    if position == 1 and op == "CumSum":  # the axis
        rank = shapes.get(inputs[0])
        return IndexRange(high=len(rank)) if rank else None
    return None


_STANDARD = ("", "ai.onnx")


def _all_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Every node, subgraphs (If, Loop, Scan bodies) included: they may use the graph's inputs."""
    nodes, graphs = [], [graph]
    while graphs:
        for node in graphs.pop().node:
            nodes.append(node)
            for attr in node.attribute:
                graphs.extend([attr.g] if attr.HasField("g") else [])
                graphs.extend(attr.graphs)
    return nodes


def _constants(graph: onnx.GraphProto) -> Callable[[str], np.ndarray | None]:
    """Look up the value of a small initializer or Constant node's output (OneHot's depth)."""
    tensors = {t.name: t for t in graph.initializer}
    for node in _all_nodes(graph):
        if node.op_type == "Constant" and node.output and node.attribute and node.attribute[0].name == "value":
            tensors[node.output[0]] = node.attribute[0].t

    def value(name: str) -> np.ndarray | None:
        tensor = tensors.get(name)
        if tensor is None or tensor.data_location == onnx.TensorProto.EXTERNAL or math.prod(tensor.dims) > 16:
            return None
        try:
            return numpy_helper.to_array(tensor)
        except PARSE_ERRORS:
            return None  # an unreadable constant bounds nothing; the checker has passed the graph
    return value

