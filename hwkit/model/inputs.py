"""Seeded, realistic input arrays generated from a model's signature.

Never zeros: constant inputs can run faster than real data and hide outputs that were never
written. Integer inputs stay inside a range the graph can index with (for embeddings, the
table's size), masks are all ones so no attention row is fully masked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from hwkit.model.specs import TensorSpec

DEFAULT_INT_HIGH = 10  # exclusive upper bound for integers nothing else tells us about


def generate_inputs(
    specs: Sequence[TensorSpec],
    shapes: Mapping[str, tuple[int, ...]],
    seed: int = 0,
    int_bounds: Mapping[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """One array per input, of the resolved ``shapes``; the same seed gives the same arrays.

    Each input draws from its own stream (seed, position), so adding an input does not change
    the others.
    """
    bounds = int_bounds or {}
    arrays: dict[str, np.ndarray] = {}
    for index, spec in enumerate(specs):
        rng = np.random.default_rng([seed, index])
        shape = shapes[spec.name]
        dtype = np.dtype(spec.dtype)
        if dtype == np.bool_:
            array = rng.random(shape) < 0.5
        elif np.issubdtype(dtype, np.integer):
            if "mask" in spec.name.lower():
                array = np.ones(shape, dtype=dtype)
            else:
                high = bounds.get(spec.name, DEFAULT_INT_HIGH)
                if np.iinfo(dtype).max < high:
                    high = int(np.iinfo(dtype).max) + 1
                array = rng.integers(0, high, size=shape, dtype=dtype)
        elif dtype.kind == "f" or dtype.name in ("bfloat16",) or dtype.name.startswith("float8"):
            array = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
        elif dtype.kind == "c":
            array = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
        else:
            array = rng.integers(0, 2, size=shape).astype(dtype)
        arrays[spec.name] = np.asarray(array)
    return arrays


def index_bounds(graph: onnx.GraphProto) -> dict[str, int]:
    """For graph inputs used directly as Gather indices into an initializer, the table's size.

    This keeps generated token ids inside an embedding table of any size.
    """
    inputs = {i.name for i in graph.input}
    tables = {init.name: list(init.dims) for init in graph.initializer}
    bounds: dict[str, int] = {}
    for node in graph.node:
        if node.op_type != "Gather" or len(node.input) < 2:
            continue
        data, indices = node.input[0], node.input[1]
        if indices in inputs and data in tables:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            dims = tables[data]
            size = dims[axis] if -len(dims) <= axis < len(dims) else 0
            if size > 0:
                bounds[indices] = min(bounds.get(indices, size), size)
    return bounds
