"""External data: vetting every reference of a model to data files before anything is read.

ONNX models over 2 GB keep their weights in files beside the .onnx file. A hostile or broken
model may point those references anywhere (``../../etc/passwd``, ``/dev/zero``) or beyond a
file's end; ``vet_external_data`` refuses all of it before a byte is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto

from hwkit._files import not_a_regular_file
from hwkit.errors import ModelError

# What onnx.load, the checker and onnx's Python helpers may raise for unreadable or malformed
# content (the last five defensively: helpers index and recurse into fields a hostile file
# controls). benchmarks/fuzz_model_load.py checks that nothing else escapes.
PARSE_ERRORS = (DecodeError, ValueError, TypeError, RuntimeError, UnicodeDecodeError, OSError,
                 IndexError, KeyError, AttributeError, RecursionError, OverflowError)

def refuse_non_file(path: str | os.PathLike[str], fix: str) -> None:
    """Refuse a path that is not a regular file (``_files.not_a_regular_file``) before anything
    opens it. A path that does not exist is left to the caller, which names the fix for that.

    Raises:
        ModelError: ``path`` is a device, a FIFO, a socket or a folder; ``fix`` says what to pass.
    """
    try:
        what = not_a_regular_file(path)
    except OSError as e:
        raise ModelError(f"cannot read {os.fspath(path)}: {e.strerror or e}; check its permissions") from e
    if what is not None:
        raise ModelError(f"{what}, not a file; {fix}")


def all_tensors(proto: onnx.ModelProto) -> Iterator[TensorProto]:
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


def has_external(proto: onnx.ModelProto) -> bool:
    return any(t.data_location == TensorProto.EXTERNAL for t in all_tensors(proto))


def refuse_external(proto: onnx.ModelProto, where: str) -> None:
    """Bytes and protos have no folder to resolve external data in; never guess one (e.g. the cwd)."""
    if has_external(proto):
        raise ModelError(
            f"{where} refer to external data files; load the model from its .onnx path so they "
            "are found next to it"
        )


def vet_external_data(proto: onnx.ModelProto, path: Path) -> tuple[list[Path], int]:
    """Check every external data reference BEFORE anything is read: the location must be a
    relative path to a regular file inside the model's folder (symlinks resolved) and the
    offset/length must lie within it. Returns the files in first-use order and the bytes used.

    This is what stops a hostile model from reading ``../../etc/passwd`` or ``/dev/zero``.
    """
    base = path.parent.resolve()
    files: dict[Path, int] = {}
    total = 0
    for tensor in all_tensors(proto):
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
