"""Per-shape conversion, for the few graphs that cannot be converted with symbolic dimensions.

The converter keeps dynamic dimensions symbolic. A handful of ops need a dimension's value at
conversion time (e.g. ConvTranspose with ``auto_pad`` over dynamic spatial dims) and refuse a
symbolic one. Such a model is converted once per input shape instead: the graph's inputs are
given the shapes of the arrays of a call, converted, and the result cached per shape, so each
shape pays the conversion once. ``PerShapeModule`` is called like the module it stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx
import torch

from hwkit.errors import CompileError, UnsupportedOpError
from hwkit_torch.fx.converter import RefusedOpsError

Build = Callable[[onnx.ModelProto], Any]  # a static-shape proto -> the module to call


def needs_shapes(error: Exception, proto: onnx.ModelProto) -> bool:
    """Whether a conversion error may go away with static input shapes: the graph has dynamic
    input dims, and the error is about conversion (not an op without a handler)."""
    if isinstance(error, UnsupportedOpError) and not isinstance(error, RefusedOpsError):
        return False  # missing ops stay missing at every shape
    if not isinstance(error, (CompileError, RefusedOpsError)):
        return False
    return any(not d.HasField("dim_value") for vi in _real_inputs(proto)
               if vi.type.HasField("tensor_type") for d in vi.type.tensor_type.shape.dim)


def with_static_inputs(proto: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """A copy of ``proto`` whose inputs named in ``shapes`` have those shapes."""
    static = onnx.ModelProto()
    static.CopyFrom(proto)
    for vi in static.graph.input:
        if vi.name in shapes and vi.type.HasField("tensor_type"):
            dims = vi.type.tensor_type.shape.dim
            for d, size in zip(dims, shapes[vi.name]):
                d.Clear()
                d.dim_value = size
    return static


class PerShapeModule:
    """Converts (and builds) ``proto`` per input shape on first sight, then reuses it."""

    def __init__(self, proto: onnx.ModelProto, names: list[str], build: Build) -> None:
        self.proto = proto
        self.names = names
        self.build = build
        self.cache: dict[tuple[Any, ...], Any] = {}

    def prepare(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Convert for ``shapes`` now (raising the conversion's error if it fails there too)."""
        self._module(shapes)

    def __call__(self, *tensors: Any) -> Any:
        shapes = {n: tuple(t.shape) for n, t in zip(self.names, tensors) if isinstance(t, torch.Tensor)}
        return self._module(shapes)(*tensors)

    def _module(self, shapes: dict[str, tuple[int, ...]]) -> Any:
        key = tuple(sorted(shapes.items()))
        if key not in self.cache:
            self.cache[key] = self.build(with_static_inputs(self.proto, shapes))
        return self.cache[key]


def _real_inputs(proto: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in proto.graph.initializer}
    return [vi for vi in proto.graph.input if vi.name not in inits]
