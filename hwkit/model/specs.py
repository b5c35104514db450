"""Tensor signatures of a model, and checking caller inputs against them."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from hwkit.errors import ModelError

Dim = int | str | None  # a size, a symbolic name, or unknown


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """Name, element type and shape of a graph input or output.

    Attributes:
        name: the graph's name for the tensor.
        dtype: numpy dtype name ("float32", "int64", "bfloat16" via ml_dtypes).
        shape: one entry per axis: an int, a symbolic name, or None when unknown;
            None for the whole shape when even the rank is unknown.
        kind: "tensor"; or "sequence" (a list of tensors), "optional" (a tensor or None),
            "optional_sequence" (a list or None). dtype and shape then describe the elements.
    """

    name: str
    dtype: str
    shape: tuple[Dim, ...] | None
    kind: str = "tensor"

    @classmethod
    def from_value_info(cls, info: onnx.ValueInfoProto) -> TensorSpec:
        if not isinstance(info.name, str) or not info.name:
            # proto2 does not check UTF-8: upb returns an invalid name as bytes.
            raise ModelError(
                f"a graph input or output has an empty or non-UTF-8 name ({info.name[:60]!r}); "
                "name every input and output with text when exporting"
            )
        kind, value_type = "tensor", info.type
        if value_type.WhichOneof("value") == "optional_type":
            kind, value_type = "optional", value_type.optional_type.elem_type
        if value_type.WhichOneof("value") == "sequence_type":
            kind, value_type = ("optional_sequence" if kind == "optional" else "sequence"), value_type.sequence_type.elem_type
        which = value_type.WhichOneof("value")
        if which != "tensor_type":
            raise ModelError(
                f"graph value '{info.name}' is a {which or 'value of unknown type'}; hwkit handles "
                "tensors, sequences of tensors and optional tensors only"
            )
        tensor = value_type.tensor_type
        dtype = onnx_dtype_name(tensor.elem_type, info.name)
        if not tensor.HasField("shape"):
            return cls(info.name, dtype, None, kind)
        dims: list[Dim] = []
        for d in tensor.shape.dim:
            field = d.WhichOneof("value")
            if field == "dim_param" and not isinstance(d.dim_param, str):
                raise ModelError(f"tensor '{info.name}' has a non-UTF-8 dimension name; re-export the model")
            dims.append(d.dim_value if field == "dim_value" else d.dim_param if field else None)
        return cls(info.name, dtype, tuple(dims), kind)

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    def __str__(self) -> str:
        dims = "?" if self.shape is None else ",".join("?" if d is None else str(d) for d in self.shape)
        element = f"{self.dtype}[{dims}]"
        wrap = {"tensor": "{}", "sequence": "seq({})", "optional": "optional({})",
                "optional_sequence": "optional(seq({}))"}[self.kind]
        return f"{self.name}: {wrap.format(element)}"


def onnx_dtype_name(elem_type: int, where: str = "") -> str:
    """The numpy dtype name for an ONNX element type (bfloat16 and float8 through ml_dtypes)."""
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, ValueError, TypeError) as e:
        raise ModelError(
            f"tensor '{where}' has ONNX element type {elem_type}, which hwkit cannot represent"
        ) from e


def resolve_shapes(
    specs: Sequence[TensorSpec],
    shapes: Mapping[str, Sequence[int]] | None = None,
    dims: Mapping[str, int] | None = None,
) -> dict[str, tuple[int, ...]]:
    """Fix every input's shape: explicit ``shapes`` by input name, symbolic ``dims`` by dim name.

    Raises:
        ModelError: naming every dimension still unset, and how to set it.
    """
    shapes = dict(shapes or {})
    dims = dict(dims or {})
    _check_names("--shape", shapes, specs)
    known_symbols = {d for s in specs for d in (s.shape or ()) if isinstance(d, str)}
    unknown_dims = sorted(set(dims) - known_symbols)
    if unknown_dims:
        raise ModelError(
            f"unknown dimension name(s) {', '.join(unknown_dims)}; the model's symbolic dimensions "
            f"are: {', '.join(sorted(known_symbols)) or 'none'}"
        )
    resolved: dict[str, tuple[int, ...]] = {}
    unset: list[str] = []
    for spec in specs:
        if spec.kind != "tensor":
            raise ModelError(
                f"input {spec} is not a plain tensor, so hwkit cannot generate it; pass your own "
                "inputs (the library's Executable.run takes lists for sequences and None for optionals)"
            )
        if spec.name in shapes:
            shape = tuple(int(d) for d in shapes[spec.name])
            _check_shape(spec, shape, "--shape")
            resolved[spec.name] = shape
            continue
        if spec.shape is None:
            unset.append(f"'{spec.name}' (rank unknown)")
            continue
        fixed: list[int] = []
        for axis, d in enumerate(spec.shape):
            if isinstance(d, int):
                fixed.append(d)
            elif isinstance(d, str) and d in dims:
                fixed.append(int(dims[d]))
            else:
                label = f"'{d}'" if d else "unnamed"
                unset.append(f"'{spec.name}' axis {axis} ({label})")
                fixed.append(-1)
        resolved[spec.name] = tuple(fixed)
    if unset:
        example = next(s for s in specs if s.name not in shapes and not s.is_static)
        sample = "x".join(
            str(d) if isinstance(d, int) else "1" for d in (example.shape or (1,))
        )
        raise ModelError(
            f"dynamic dimension(s) left unset: {', '.join(unset)}; fix them with "
            f"--shape {example.name}={sample} (or --dim NAME=N, shapes= / dims= in the API)"
        )
    for name, shape in resolved.items():
        if any(d < 0 for d in shape):
            raise ModelError(f"input '{name}' would get negative size {shape}; use sizes >= 0")
    return resolved


def check_inputs(specs: Sequence[TensorSpec], inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Return ``inputs`` as numpy arrays in graph order, or raise ModelError on any mismatch."""
    _check_names("input", inputs, specs)
    missing = [s.name for s in specs if s.name not in inputs]
    if missing:
        raise ModelError(
            f"missing input(s) {', '.join(missing)}; the model takes: "
            + "; ".join(str(s) for s in specs)
        )
    checked: dict[str, np.ndarray] = {}
    bound: dict[str, int] = {}
    for spec in specs:
        checked[spec.name] = _check_value(spec, inputs[spec.name], bound)
    return checked


def _check_value(spec: TensorSpec, value: Any, bound: dict[str, int]) -> Any:
    """One input as the runtimes take it: an array, a list of arrays (sequence) or None (optional)."""
    if value is None and spec.kind.startswith("optional"):
        return None
    if spec.kind in ("sequence", "optional_sequence"):
        if not isinstance(value, (list, tuple)):
            raise ModelError(f"input {spec} is a sequence: pass a list of arrays, got {type(value).__name__}")
        return [_check_array(spec, item, {}, f"an element of input '{spec.name}'") for item in value]
    return _check_array(spec, value, bound, f"input '{spec.name}'")


def _check_array(spec: TensorSpec, value: Any, bound: dict[str, int], what: str) -> np.ndarray:
    array = np.asarray(value)  # numpy scalars become 0-d arrays
    if array.dtype.name != spec.dtype:
        raise ModelError(f"{what} must be {spec.dtype}, got {array.dtype.name}; convert it with .astype('{spec.dtype}')")
    _check_shape(spec, array.shape, "input", bound)
    return array


def _check_shape(
    spec: TensorSpec, shape: tuple[int, ...], what: str, bound: dict[str, int] | None = None
) -> None:
    if spec.shape is None:
        return
    expected = "(" + ", ".join("?" if d is None else str(d) for d in spec.shape) + ")"
    if len(shape) != len(spec.shape):
        raise ModelError(
            f"{what} '{spec.name}' has shape {tuple(shape)} but the model expects {expected} "
            f"({len(spec.shape)} axes)"
        )
    for axis, (got, want) in enumerate(zip(shape, spec.shape)):
        if isinstance(want, int) and got != want:
            raise ModelError(
                f"{what} '{spec.name}' has shape {tuple(shape)} but the model expects {expected}: "
                f"axis {axis} must be {want}"
            )
        if isinstance(want, str) and bound is not None:
            if bound.setdefault(want, got) != got:
                raise ModelError(
                    f"{what} '{spec.name}' axis {axis} is {got}, but dimension '{want}' is "
                    f"{bound[want]} in another input; inputs sharing a dimension must agree"
                )


def _check_names(what: str, given: Mapping[str, Any], specs: Sequence[TensorSpec]) -> None:
    names = [s.name for s in specs]
    for name in given:
        if name not in names:
            same_case = [n for n in names if n.lower() == name.lower()]  # difflib misses 'X' vs 'x'
            close = same_case or difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ModelError(
                f"unknown {what} name '{name}'; {hint}the model's inputs are: {', '.join(names)}"
            )
