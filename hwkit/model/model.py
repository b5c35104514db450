"""``hwkit.Model``: one ONNX graph, its signature, a content fingerprint, and input generation."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from hwkit.errors import ModelError, first_line
from hwkit.model.external import PARSE_ERRORS
from hwkit.model.external import has_external, refuse_external, refuse_non_file, vet_external_data
from hwkit.model.inputs import IndexRange, generate_inputs, index_ranges
from hwkit.model.shapes import GraphSizes, check_memory, infer_shapes
from hwkit.model.specs import TensorSpec, check_inputs, resolve_shapes

if TYPE_CHECKING:
    import torch

# External data up to this size is read into the proto (so ``serialized`` works for byte-based
# runtimes); above it the tensors stay references to their files, so hwkit never holds a large
# model's weights in memory next to the runtime's own copy.
INLINE_EXTERNAL_LIMIT = 1 << 30
_HASH_CHUNK = 1 << 22
_SHAPE_CACHE = 8  # inferred graphs kept per model (a batch sweep infers one per batch size)


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
        # Resolved input shapes -> every value's size and the index ranges they give.
        self._sized: dict[tuple[Any, ...], tuple[GraphSizes, dict[str, IndexRange]]] = {}
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
            refuse_external(source, "the given ModelProto")
            _check(source, "the given ModelProto")
            return _construct(cls, source, "the given ModelProto")
        if isinstance(source, (bytes, bytearray, memoryview)):
            proto = _parse(bytes(source), "the given bytes")
            refuse_external(proto, "the given bytes")
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
            from hwkit.model.zoo import BUILTIN_MODELS, GENERATIVE_MODELS

            raise ModelError(
                f"model file not found: {path}; pass an existing .onnx file or a built-in model "
                f"({', '.join([*BUILTIN_MODELS, *GENERATIVE_MODELS])})"
            )
        if path.is_dir():
            raise ModelError(f"{path} is a folder; pass the .onnx file inside it")
        refuse_non_file(path, "pass an .onnx file")
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
        except PARSE_ERRORS as e:
            raise ModelError(
                f"{path} is not a readable ONNX model ({type(e).__name__}: {first_line(e)}); "
                "check that the file is complete and really ONNX"
            ) from e
        files, total = vet_external_data(proto, path)
        _check(proto, str(path), path)
        if files and total <= INLINE_EXTERNAL_LIMIT:
            try:
                onnx.load_external_data_for_model(proto, str(path.parent))
            except PARSE_ERRORS as e:
                raise ModelError(
                    f"cannot read the external data of {path} ({type(e).__name__}: {first_line(e)}); "
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
        """One of the built-in demo models (built as ONNX, no torch): ``mlp``, ``cnn``, ``encoder``."""
        from hwkit.model.zoo import builtin_path

        path, default_dims = builtin_path(name)
        model = cls.load(path)
        model.name = name
        model.default_dims = default_dims
        return model

    # -- identity -------------------------------------------------------------------------

    @functools.cached_property
    def serialized(self) -> bytes:
        """The graph as ONNX bytes (what byte-based runtimes are given)."""
        if self.external_files and has_external(self.proto):
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
        """Seeded random inputs that fit the graph (never zeros; indices within what they index).

        Raises:
            ModelError: a dimension is unset or does not fit the signature.
            InputMemoryError: the run would not fit in the memory available (checked first).
        """
        resolved = self.resolve_shapes(shapes, dims)
        self.check_memory(resolved, explicit=list(shapes or ()))
        return generate_inputs(self.inputs, resolved, seed, self._sized_for(resolved)[1])

    def check_memory(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        sets: int = 1,
        explicit: Sequence[str] = (),
        flags: Mapping[str, str] | None = None,
    ) -> None:
        """Refuse, before anything is allocated, a run that would not fit in the memory
        available: ``sets`` input sets of the resolved ``shapes``, one set of outputs and the
        intermediate tensors alive at once (``shapes.check_memory``).

        ``explicit``: inputs whose shape the caller gave whole (the error then names
        ``--shape``); ``flags``: the flag that set a dimension, where not ``--dim NAME``
        (``{"batch": "--batch"}``).

        Raises:
            InputMemoryError: naming the sizes, the bytes needed and available, and the fix.
        """
        check_memory(f"'{self.name}'", self.inputs, shapes, lambda: (self.sizes(shapes), self.proto.graph),
                     self.outputs, sets, explicit, flags)

    def sizes(self, shapes: Mapping[str, tuple[int, ...]]) -> GraphSizes:
        """Every value's shape and element size when the inputs have the resolved ``shapes``
        (onnx shape inference; None for an axis it cannot size)."""
        return self._sized_for(shapes)[0]

    def _sized_for(self, shapes: Mapping[str, tuple[int, ...]]) -> tuple[GraphSizes, dict[str, IndexRange]]:
        key = tuple(sorted((name, tuple(shape)) for name, shape in shapes.items()))
        if key not in self._sized:
            if len(self._sized) >= _SHAPE_CACHE:
                del self._sized[next(iter(self._sized))]
            sizes = infer_shapes(self.proto, dict(key))
            self._sized[key] = sizes, index_ranges(self.proto.graph, self.inputs, sizes.shapes)
        return self._sized[key]

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
    except PARSE_ERRORS as e:
        raise ModelError(f"{where} has a signature hwkit cannot read ({type(e).__name__}: "
                         f"{first_line(e)}); check the graph's inputs and outputs") from e


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    try:
        return onnx.load_model_from_string(data)
    except PARSE_ERRORS as e:
        raise ModelError(
            f"{where} are not a readable ONNX model ({type(e).__name__}: {first_line(e)})"
        ) from e


def _check(proto: onnx.ModelProto, where: str, path: Path | None = None) -> None:
    if not proto.HasField("graph") or not proto.opset_import:
        raise ModelError(f"{where} is not an ONNX model: it has no graph or no opset; check the file")
    _check_opsets(proto, where)
    try:
        # The path form also checks models over 2 GB, whose proto cannot be serialized whole.
        onnx.checker.check_model(str(path) if path else proto)
    except (onnx.checker.ValidationError, *PARSE_ERRORS) as e:
        raise ModelError(
            f"{where} is not a valid ONNX graph: {_one_line(e)}; repair or re-export the model "
            "(onnx.checker.check_model lists every problem)"
        ) from e


def _check_opsets(proto: onnx.ModelProto, where: str) -> None:
    """Refuse an opset newer than the installed onnx knows: the checker lets it pass, and
    backends then run it silently as an older one or fail with a cut message."""
    known = onnx.defs.C.schema_version_map()  # {domain: (first, last)} of the installed onnx
    for entry in proto.opset_import:
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        if domain in ("", "ai.onnx.ml") and entry.version > known[domain][1]:
            name = entry.domain or "ai.onnx"
            raise ModelError(
                f"{where} uses opset {entry.version} of {name}, newer than the installed onnx {onnx.__version__} "
                f"knows (up to {known[domain][1]}); upgrade onnx (pip install -U onnx) or re-export the model at "
                f"opset {known[domain][1]} or lower")


def _one_line(error: BaseException, limit: int = 300) -> str:
    """The whole message on one line (the checker spreads one problem over several)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
