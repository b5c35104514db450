"""``hwkit.Model``: one ONNX graph, its signature, a content fingerprint, and input generation."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto

from hwkit.errors import ModelError
from hwkit.model.inputs import generate_inputs, index_bounds
from hwkit.model.specs import TensorSpec, check_inputs, resolve_shapes

if TYPE_CHECKING:
    import torch

# What onnx.load, the checker and onnx's Python helpers may raise for unreadable or malformed
# content (the last five defensively: helpers index and recurse into fields a hostile file
# controls). benchmarks/fuzz_model_load.py checks that nothing else escapes.
_PARSE_ERRORS = (DecodeError, ValueError, TypeError, RuntimeError, UnicodeDecodeError, OSError,
                 IndexError, KeyError, AttributeError, RecursionError, OverflowError)
# External data up to this size is read into the proto (so ``serialized`` works for byte-based
# runtimes); above it the tensors stay references to their files, so hwkit never holds a large
# model's weights in memory next to the runtime's own copy.
INLINE_EXTERNAL_LIMIT = 1 << 30
_HASH_CHUNK = 1 << 22


class Model:
    """An ONNX graph that every backend compiles and runs as it is.

    Build one with ``Model.load`` (a file, bytes or ModelProto), ``Model.from_torch`` or
    ``Model.builtin``.

    Attributes:
        proto: the ONNX ModelProto. External data up to ``INLINE_EXTERNAL_LIMIT`` bytes is
            loaded into it; above that its tensors still point to files in ``path``'s folder
            (read them with ``onnx.numpy_helper.to_array(t, str(model.path.parent))``).
        name: a short label for tables ("cnn", the file's stem).
        path: the file it came from, if any.
        external_files: the external data files the .onnx file refers to (checked to lie in
            its folder), in first-use order; empty for self-contained models.
        inputs / outputs: the graph's signature as TensorSpec lists.
        default_dims: values for symbolic dimensions used when the caller sets none
            (the built-in models fix their batch to 1 this way).
    """

    def __init__(
        self,
        proto: onnx.ModelProto,
        name: str = "model",
        path: Path | None = None,
        default_dims: Mapping[str, int] | None = None,
        external_files: Sequence[Path] = (),
    ) -> None:
        self.proto = proto
        self.name = name
        self.path = path
        self.default_dims = dict(default_dims or {})
        self.external_files = list(external_files)
        graph = proto.graph
        initialized = {init.name for init in graph.initializer}
        self.inputs = [TensorSpec.from_value_info(v) for v in graph.input if v.name not in initialized]
        self.outputs = [TensorSpec.from_value_info(v) for v in graph.output]
        if not self.outputs:
            raise ModelError(f"model '{name}' has no outputs; nothing to run or compare")

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def load(cls, source: str | os.PathLike[str] | bytes | onnx.ModelProto | Model) -> Model:
        """Read and validate an ONNX model from a path, serialized bytes or a ModelProto.

        Raises:
            ModelError: the file is missing, is not ONNX, or fails the ONNX checker.
        """
        if isinstance(source, Model):
            return source
        if isinstance(source, onnx.ModelProto):
            _refuse_external(source, "the given ModelProto")
            _check(source, "the given ModelProto")
            return _construct(cls, source, "the given ModelProto")
        if isinstance(source, (bytes, bytearray, memoryview)):
            proto = _parse(bytes(source), "the given bytes")
            _refuse_external(proto, "the given bytes")
            _check(proto, "the given bytes")
            return _construct(cls, proto, "the given bytes")
        if isinstance(source, (str, os.PathLike)):
            return cls._load_path(Path(source))
        raise ModelError(
            f"cannot load a model from {type(source).__name__}; pass an .onnx path, bytes, "
            "an onnx.ModelProto, or use Model.from_torch / Model.builtin"
        )

    @classmethod
    def _load_path(cls, path: Path) -> Model:
        if not path.exists():
            from hwkit.model.zoo import BUILTIN_MODELS

            raise ModelError(
                f"model file not found: {path}; pass an existing .onnx file or a built-in model "
                f"({', '.join(BUILTIN_MODELS)})"
            )
        if path.is_dir():
            raise ModelError(f"{path} is a folder; pass the .onnx file inside it")
        try:
            with path.open("rb") as handle:
                head = handle.read(4)
        except OSError as e:
            raise ModelError(f"cannot read {path}: {e.strerror or e}; check its permissions") from e
        if head.startswith(b"PK"):
            raise ModelError(
                f"{path} is a zip archive (a PyTorch checkpoint?), not ONNX; export it with "
                "hwkit.Model.from_torch or torch.onnx.export"
            )
        try:
            # External data is not read here: every location is vetted first (below).
            proto = onnx.load(str(path), load_external_data=False)
        except _PARSE_ERRORS as e:
            raise ModelError(
                f"{path} is not a readable ONNX model ({type(e).__name__}: {_first_line(e)}); "
                "check that the file is complete and really ONNX"
            ) from e
        files, total = _vet_external_data(proto, path)
        _check(proto, str(path), path)
        if files and total <= INLINE_EXTERNAL_LIMIT:
            try:
                onnx.load_external_data_for_model(proto, str(path.parent))
            except _PARSE_ERRORS as e:
                raise ModelError(
                    f"cannot read the external data of {path} ({type(e).__name__}: {_first_line(e)}); "
                    "check that the data files next to it are complete"
                ) from e
        return _construct(cls, proto, str(path), name=path.stem, path=path, external_files=files)

    @classmethod
    def from_torch(
        cls,
        module: torch.nn.Module,
        example_inputs: Sequence[Any] | Any,
        dynamic_shapes: Any = None,
        name: str | None = None,
    ) -> Model:
        """Export a torch module with ``torch.onnx.export(dynamo=True)``, cached on disk.

        The exporter's progress lines and warnings are kept out of the terminal; on failure they
        are part of the error. The second export of the same module, weights and inputs reads
        the cache instead of paying the exporter's seconds again.
        """
        from hwkit.model.export import export_torch

        proto = export_torch(module, example_inputs, dynamic_shapes)
        return cls(proto, name=name or type(module).__name__)

    @classmethod
    def builtin(cls, name: str) -> Model:
        """One of the demo models defined in plain torch: ``mlp``, ``cnn``, ``encoder``."""
        from hwkit.model.zoo import load_builtin

        return load_builtin(name)

    # -- identity -------------------------------------------------------------------------

    @functools.cached_property
    def serialized(self) -> bytes:
        """The graph as ONNX bytes (what byte-based runtimes are given)."""
        if self.external_files and _has_external(self.proto):
            raise ModelError(
                f"model '{self.name}' keeps its weights in external data files; compile it from "
                f"its .onnx path ({self.path}) instead of from bytes"
            )
        try:
            return self.proto.SerializeToString()
        except ValueError as e:  # protobuf refuses messages over 2 GB
            raise ModelError(
                f"model '{self.name}' is too large to serialize in memory; load it from its "
                ".onnx file with external data instead"
            ) from e

    @functools.cached_property
    def sha256(self) -> str:
        """Fingerprint of the graph's content.

        Self-contained models: the serialized ModelProto (equal for path, bytes and proto).
        Models with external data: the .onnx file's bytes, then each data file's name and
        bytes, read in chunks, so a model over 2 GB is never serialized or held whole.
        """
        if not self.external_files or self.path is None:
            return hashlib.sha256(self.serialized).hexdigest()
        digest = hashlib.sha256()
        base = self.path.parent.resolve()  # external_files are resolved paths inside it
        try:
            for file in [self.path, *self.external_files]:
                label = self.path.name if file is self.path else file.relative_to(base).as_posix()
                digest.update(label.encode() + b"\0")  # a file's name is part of the model
                with file.open("rb") as handle:
                    while chunk := handle.read(_HASH_CHUNK):
                        digest.update(chunk)
        except OSError as e:
            raise ModelError(
                f"cannot read {e.filename or self.path} to fingerprint '{self.name}': "
                f"{e.strerror or e}; keep the model's files in place while hwkit runs"
            ) from e
        return digest.hexdigest()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as an .onnx file (atomically)."""
        from hwkit._files import atomic_write

        return atomic_write(path, self.serialized)

    # -- inputs ---------------------------------------------------------------------------

    def resolve_shapes(
        self, shapes: Mapping[str, Sequence[int]] | None = None, dims: Mapping[str, int] | None = None
    ) -> dict[str, tuple[int, ...]]:
        """Every input's concrete shape; dynamic dims from ``shapes``, ``dims`` or defaults."""
        return resolve_shapes(self.inputs, shapes, {**self.default_dims, **(dims or {})})

    def make_inputs(
        self,
        shapes: Mapping[str, Sequence[int]] | None = None,
        dims: Mapping[str, int] | None = None,
        seed: int = 0,
    ) -> dict[str, np.ndarray]:
        """Seeded random inputs that fit the graph (never zeros; indices within tables)."""
        return generate_inputs(
            self.inputs, self.resolve_shapes(shapes, dims), seed, index_bounds(self.proto.graph)
        )

    def check_inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Inputs as numpy arrays, checked against names, dtypes and shapes (ModelError if not)."""
        return check_inputs(self.inputs, inputs)

    def nodes_by_op(self, ops: Iterable[str]) -> dict[str, list[str]]:
        """Node names per op, for error messages; ``ops`` may be "Op", "domain.Op" or "domain:Op"."""
        found: dict[str, list[str]] = {}
        for op in ops:
            domain, _, op_type = op.replace(":", ".").rpartition(".")
            found[op] = [
                n.name or f"#{i}"
                for i, n in enumerate(self.proto.graph.node)
                if n.op_type == op_type and (not domain or n.domain == domain)
            ]
        return found

    @property
    def opset(self) -> int:
        """The default-domain opset the graph was written against."""
        return next((o.version for o in self.proto.opset_import if o.domain in ("", "ai.onnx")), 0)

    def __repr__(self) -> str:
        ins = ", ".join(str(s) for s in self.inputs)
        outs = ", ".join(str(s) for s in self.outputs)
        return f"Model({self.name!r}, inputs=[{ins}], outputs=[{outs}], opset={self.opset})"


def _construct(cls: type[Model], proto: onnx.ModelProto, where: str, **kwargs: Any) -> Model:
    """``cls(proto, ...)``, with onnx helper errors on odd but checker-approved protos made ModelErrors."""
    try:
        return cls(proto, **kwargs)
    except ModelError:
        raise
    except _PARSE_ERRORS as e:
        raise ModelError(f"{where} has a signature hwkit cannot read ({type(e).__name__}: "
                         f"{_first_line(e)}); check the graph's inputs and outputs") from e


def _all_tensors(proto: onnx.ModelProto) -> Iterator[TensorProto]:
    """Every TensorProto of the model: initializers, sparse ones, node attributes, subgraphs
    and functions (any of them may point to external data)."""
    graphs: list[onnx.GraphProto] = [proto.graph]
    nodes: list[onnx.NodeProto] = [n for f in proto.functions for n in f.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            yield from graph.initializer
            for sparse in graph.sparse_initializer:
                yield sparse.values
                yield sparse.indices
            nodes.extend(graph.node)
            continue
        for attr in nodes.pop().attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            for sparse in attr.sparse_tensors:
                yield sparse.values
                yield sparse.indices
            if attr.HasField("g"):
                graphs.append(attr.g)
            graphs.extend(attr.graphs)


def _text(value: str | bytes) -> str:
    """A proto string field as text; invalid UTF-8 (returned as bytes) shows as U+FFFD."""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _has_external(proto: onnx.ModelProto) -> bool:
    return any(t.data_location == TensorProto.EXTERNAL for t in _all_tensors(proto))


def _refuse_external(proto: onnx.ModelProto, where: str) -> None:
    """Bytes and protos have no folder to resolve external data in; never guess one (e.g. the cwd)."""
    if _has_external(proto):
        raise ModelError(
            f"{where} refer to external data files; load the model from its .onnx path so they "
            "are found next to it"
        )


def _vet_external_data(proto: onnx.ModelProto, path: Path) -> tuple[list[Path], int]:
    """Check every external data reference BEFORE anything is read: the location must be a
    relative path to a regular file inside the model's folder (symlinks resolved) and the
    offset/length must lie within it. Returns the files in first-use order and the bytes used.

    This is what stops a hostile model from reading ``../../etc/passwd`` or ``/dev/zero``.
    """
    base = path.parent.resolve()
    files: dict[Path, int] = {}
    total = 0
    for tensor in _all_tensors(proto):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        # proto2 strings are not UTF-8-checked: upb hands invalid ones back as bytes (fuzzer).
        entries = {_text(e.key): _text(e.value) for e in tensor.external_data}
        location = entries.get("location", "")
        label = f"tensor '{_text(tensor.name)[:80]}' of {path}"
        fix = "keep external data files in the model's folder and refer to them by relative name"
        if not location or "\0" in location or "\ufffd" in location:
            raise ModelError(f"{label} has external data without a valid location; {fix}")
        if os.path.isabs(location) or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
            raise ModelError(f"{label} points to external data at absolute path '{location[:200]}'; "
                             f"refused for safety: {fix}")
        target = (base / location).resolve()
        if target != base and base not in target.parents:
            raise ModelError(f"{label} points to external data '{location[:200]}' outside the "
                             f"model's folder; refused for safety: {fix}")
        if not target.is_file():
            raise ModelError(f"{label} needs external data file '{location[:200]}', which is missing "
                             f"or not a regular file; copy it next to {path.name}")
        try:
            offset = int(entries.get("offset", "0") or 0)
            length = int(entries["length"]) if entries.get("length") else None
        except ValueError as e:
            raise ModelError(f"{label} has a malformed external data offset or length; re-export the model") from e
        size = files.get(target)
        if size is None:
            size = files[target] = target.stat().st_size
        if offset < 0 or (length is not None and length < 0) or offset + (length or 0) > size:
            raise ModelError(f"{label} reads beyond the end of '{location[:200]}' ({size} bytes); "
                             "the data file is truncated or does not belong to this model")
        total += length if length is not None else size - offset
    return list(files), total


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    try:
        return onnx.load_model_from_string(data)
    except _PARSE_ERRORS as e:
        raise ModelError(
            f"{where} are not a readable ONNX model ({type(e).__name__}: {_first_line(e)})"
        ) from e


def _check(proto: onnx.ModelProto, where: str, path: Path | None = None) -> None:
    if not proto.HasField("graph") or not proto.opset_import:
        raise ModelError(f"{where} is not an ONNX model: it has no graph or no opset; check the file")
    try:
        # The path form also checks models over 2 GB, whose proto cannot be serialized whole.
        onnx.checker.check_model(str(path) if path else proto)
    except (onnx.checker.ValidationError, *_PARSE_ERRORS) as e:
        raise ModelError(
            f"{where} is not a valid ONNX graph: {_one_line(e)}; repair or re-export the model "
            "(onnx.checker.check_model lists every problem)"
        ) from e


def _one_line(error: BaseException, limit: int = 300) -> str:
    """The whole message on one line (the checker spreads one problem over several)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:300]
