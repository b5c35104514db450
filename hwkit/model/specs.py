"""Tensor signatures of a model, and checking caller inputs against them."""

from __future__ import annotations

import dataclasses
import difflib
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from hwkit.errors import BackendOutputError, ModelError

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
        ModelError: naming every dimension still unset, once, with values that fix them all.
    """
    shapes = dict(shapes or {})
    dims = dict(dims or {})
    _check_names("--shape", shapes, specs)
    known_symbols = {d for s in specs for d in (s.shape or ()) if isinstance(d, str) and d}
    unknown_dims = sorted(set(dims) - known_symbols)
    if unknown_dims:
        raise ModelError(
            f"unknown dimension name(s) {', '.join(unknown_dims)}; the model's symbolic dimensions "
            f"are: {', '.join(sorted(known_symbols)) or 'none'}"
        )
    resolved: dict[str, tuple[int, ...]] = {}
    unset = False
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
        elif spec.shape is None or any(not isinstance(d, int) and d not in dims for d in spec.shape):
            unset = True
        else:
            resolved[spec.name] = tuple(d if isinstance(d, int) else int(dims[d or ""]) for d in spec.shape)
    if unset:
        raise ModelError(_unset_message([s for s in specs if s.name not in shapes], dims))
    for name, shape in resolved.items():
        if any(d < 0 for d in shape):
            raise ModelError(f"input '{name}' would get negative size {shape}; use sizes >= 0")
    return resolved


# Words in a dimension's name that say what it counts, and the size suggested for it.
_SEQUENCE_WORDS = {"seq", "seqlen", "sequence", "sequences", "len", "length", "past", "tokens", "token",
                   "time", "steps", "step", "frames", "context", "ctx", "positions"}
_SIDE_WORDS = {"height", "width", "h", "w", "side", "img", "image", "resolution"}
_BATCH_WORDS = {"batch", "batches", "bs", "batchsize", "nbatch"}
GUESSED_SIZE = 16


def suggest_size(name: str) -> tuple[int, bool]:
    """A sensible size for the symbolic dimension ``name``, and whether it is only a guess:
    batch-like names 1, sequence-like names 128, image sides 224, anything else a guess."""
    words = set(re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()))
    if words & _SEQUENCE_WORDS:
        return 128, False
    if words & _SIDE_WORDS:
        return 224, False
    if words & _BATCH_WORDS or name.lower() in ("n", "b"):
        return 1, False
    return GUESSED_SIZE, True


def _unset_message(specs: Sequence[TensorSpec], dims: Mapping[str, int]) -> str:
    """One line naming every unset dimension once, with the flags that set them all at once.

    Named dimensions get ``--dim NAME=N``; an input with unnamed dynamic axes can only get
    ``--shape``, suggested whole for that input alone (so does one of unknown rank).
    """
    users: dict[str, list[str]] = {}  # dimension name -> "input axis N" where it is unset
    whole: dict[str, tuple[int, ...]] = {}  # input with unnamed axes -> its suggested shape
    guesses: dict[str, str] = {}
    unknown_rank = [s.name for s in specs if s.shape is None]
    for spec in specs:
        anonymous = any(not isinstance(d, int) and not d for d in spec.shape or ())
        sizes = []
        for axis, d in enumerate(spec.shape or ()):
            if isinstance(d, int) or (d and d in dims):
                sizes.append(int(d if isinstance(d, int) else dims[d]))
            elif d:
                size, guessed = suggest_size(d)
                sizes.append(size)
                if guessed:
                    guesses[d] = f"{d}={size}"
                if not anonymous:
                    users.setdefault(d, []).append(f"{spec.name} axis {axis}")
            else:  # unnamed: by position, the batch leads, then channels and image sides, or a sequence
                image = len(spec.shape or ()) == 4
                sizes.append(1 if axis == 0 else (3 if axis == 1 else 224) if image else 128)
        if anonymous:
            whole[spec.name] = tuple(sizes)
            guesses[f"'{spec.name}'"] = f"the unnamed axes of '{spec.name}'"
    suggested = {d: suggest_size(d)[0] for d in users}
    listed = [f"'{d}' ({_shorten(where)})" for d, where in users.items()]
    listed += [f"unnamed axes of '{n}'" for n in whole] + [f"'{n}' (rank unknown)" for n in unknown_rank]
    flags = [f"--dim {shlex.quote(f'{d}={n}')}" for d, n in suggested.items()]
    flags += [f"--shape {shlex.quote(n + '=' + 'x'.join(map(str, s)))}" for n, s in whole.items()]
    flags += [f"--shape {shlex.quote(n + '=AxBx...')} (every axis)" for n in unknown_rank]
    entries = [f"{n!r}: {s}" for n, s in whole.items()] + [f"{n!r}: (...)" for n in unknown_rank]
    api = " and ".join(filter(None, [f"dims={suggested}" if suggested else "",
                                     f"shapes={{{', '.join(entries)}}}" if entries else ""]))
    note = f"; guessed: {', '.join(guesses.values())}, use your model's sizes" if guesses else ""
    return (f"dynamic dimension(s) left unset: {', '.join(listed)}; set them with {' '.join(flags)} "
            f"({api} in the API){note}")


def _shorten(items: Sequence[str], limit: int = 3) -> str:
    return ", ".join(items[:limit]) + (f", +{len(items) - limit} more" if len(items) > limit else "")


def check_inputs(specs: Sequence[TensorSpec], inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Return ``inputs`` as numpy arrays in graph order, or raise ModelError on any mismatch."""
    if not isinstance(inputs, Mapping):
        raise ModelError(f"inputs must be a mapping of input name -> array, got {type(inputs).__name__}; "
                         "e.g. {" + ", ".join(f"'{s.name}': array" for s in specs) + "}")
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
    # One memory layout for every runtime: some (torch) refuse negative strides (x[:, ::-1]).
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)


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


def check_outputs(specs: Sequence[TensorSpec], outputs: Any, backend: str,
                  input_specs: Sequence[TensorSpec] = (), inputs: Mapping[str, Any] | None = None) -> None:
    """Check what a backend's ``execute`` returned against the model's declared outputs ``specs``:
    a dict with exactly those names; per output a numpy array of the declared dtype, rank and
    static sizes (symbolic sizes too, where ``inputs`` fix them through ``input_specs``); a list
    of such arrays for a sequence; None allowed only for an optional output.

    Raises:
        BackendOutputError: naming every difference (a plugin's bug, not the caller's input).
    """

    fixed: dict[str, int] = {}  # symbolic dimension -> its size in the inputs
    for spec in input_specs:
        value = (inputs or {}).get(spec.name)
        if spec.shape is not None and isinstance(value, np.ndarray) and value.ndim == len(spec.shape):
            fixed.update({d: n for d, n in zip(spec.shape, value.shape) if isinstance(d, str) and d})

    def kind_of(value: Any) -> str:
        return "None" if value is None else f"a {type(value).__module__.split('.')[0]}.{type(value).__name__}".replace(
            "a builtins.", "a ")

    def array_problem(spec: TensorSpec, value: Any, what: str) -> str | None:
        if not isinstance(value, np.ndarray):
            return f"{what} as {kind_of(value)}, not a numpy array"
        if value.dtype.name != spec.dtype:
            return f"{what} as {value.dtype.name}, the model declares {spec.dtype}"
        if spec.shape is None:
            return None
        if len(value.shape) != len(spec.shape) or any(
                n != (d if isinstance(d, int) else fixed.get(d or "", n)) for d, n in zip(spec.shape, value.shape)):
            declared = "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
            sizes = ", ".join(f"{d}={fixed[d]}" for d in dict.fromkeys(spec.shape) if isinstance(d, str) and d in fixed)
            return (f"{what} with shape {tuple(value.shape)}, the model declares {declared}"
                    + (f" ({sizes} in the inputs)" if sizes else ""))
        return None

    label = f"backend '{backend}'"
    if not isinstance(outputs, Mapping):
        raise BackendOutputError(
            f"{label} returned {kind_of(outputs)}, not a dict of outputs by name; the model's outputs are: "
            + "; ".join(str(s) for s in specs) + ". Its plugin is at fault: report it to the plugin's authors")
    names = [s.name for s in specs]
    problems = [f"missing output '{n}'" for n in names if n not in outputs]
    problems += [f"extra output '{n}'" for n in outputs if n not in names]
    for spec in specs:
        value = outputs.get(spec.name)
        what = f"output '{spec.name}'"
        if spec.name not in outputs or (value is None and spec.kind.startswith("optional")):
            continue
        if spec.kind.endswith("sequence"):
            if not isinstance(value, (list, tuple)):
                problems.append(f"{what} as {kind_of(value)}, the model declares a sequence (a list of arrays)")
                continue
            problems += [p for i, item in enumerate(value)
                         if (p := array_problem(spec, item, f"element {i} of {what}")) is not None]
        elif (problem := array_problem(spec, value, what)) is not None:
            problems.append(problem)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; +{len(problems) - 5} more" if len(problems) > 5 else "")
        raise BackendOutputError(
            f"{label} returned outputs that do not match the model's: {shown} (declared: "
            + "; ".join(str(s) for s in specs) + "). Its plugin is at fault: report it to the plugin's authors")
