"""Exporting torch modules to ONNX (``Model.from_torch``): quietly, and once (cached by what
determines the result, in the self-healing cache of ``hwkit._files``)."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import onnx

from hwkit._files import cache_dir, read_cached, write_cached
from hwkit.errors import ModelError
from hwkit.model.external import PARSE_ERRORS

EXPORT_FORMAT = 2  # bump when the way hwkit exports or caches changes (2: entries carry checksums)


def export_torch(
    module: Any,
    example_inputs: Sequence[Any] | Any,
    dynamic_shapes: Any = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> onnx.ModelProto:
    """Export ``module`` to an ONNX ModelProto, reusing a cached export when one matches."""
    import torch

    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    args = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    key = export_key(module, args, (dynamic_shapes, input_names, output_names))
    entry = cache_dir("exports") / f"{key}.onnx"
    data = read_cached(entry, _not_onnx)
    if data is not None:
        return onnx.load_model_from_string(data)
    was_training = module.training
    module.eval()
    try:
        with quiet() as log:
            try:
                program = torch.onnx.export(
                    module,
                    args,
                    dynamo=True,
                    dynamic_shapes=dynamic_shapes,
                    input_names=list(input_names) if input_names else None,
                    output_names=list(output_names) if output_names else None,
                    verbose=False,
                )
            except Exception as e:  # the exporter raises many kinds; all mean "could not export"
                tail = " | ".join(log.read().strip().splitlines()[-3:])
                raise ModelError(
                    f"torch.onnx.export failed for {type(module).__name__}: "
                    f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                    + (f" (exporter log: {tail})" if tail else "")
                ) from e
    finally:
        module.train(was_training)
    if program is None:  # only the legacy exporter (dynamo=False) returns nothing
        raise ModelError(f"torch.onnx.export returned no program for {type(module).__name__}")
    proto = program.model_proto
    write_cached(entry, proto.SerializeToString())
    return proto


def _not_onnx(data: bytes) -> str | None:
    try:
        onnx.load_model_from_string(data)
    except PARSE_ERRORS as e:
        return f"not ONNX: {type(e).__name__}"
    return None


def export_key(module: Any, args: tuple[Any, ...], dynamic_shapes: Any) -> str:
    """A digest of everything the export depends on: code, structure, weights, inputs, versions."""
    import torch

    digest = hashlib.sha256()

    def feed(*parts: object) -> None:
        for part in parts:
            digest.update(part if isinstance(part, bytes) else repr(part).encode())
            digest.update(b"\0")

    feed(EXPORT_FORMAT, torch.__version__, onnx.__version__, repr(module), repr(dynamic_shapes))
    for cls in sorted({type(m) for m in module.modules()}, key=lambda c: c.__qualname__):
        feed(cls.__module__, cls.__qualname__, _source(cls))
    for name, tensor in module.state_dict().items():
        feed(name, tensor.dtype, tuple(tensor.shape), _tensor_bytes(tensor))
    for arg in args:  # the graph depends on example shapes and dtypes, not on their values
        if isinstance(arg, torch.Tensor):
            feed(arg.dtype, tuple(arg.shape))
        else:
            feed(arg)
    return digest.hexdigest()[:32]


def _tensor_bytes(tensor: Any) -> bytes:
    import torch

    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def _source(cls: type) -> str:
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):  # defined in a REPL or C: the qualname must do
        return ""


@contextlib.contextmanager
def quiet() -> Iterator[Any]:
    """Send everything written to stdout/stderr (Python and native) and warnings to a temp file."""
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+") as log:
        saved = os.dup(1), os.dup(2)
        loggers = [logging.getLogger(n) for n in ("torch", "onnxscript", "torch.onnx")]
        levels = [lg.level for lg in loggers]
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            for lg in loggers:
                lg.setLevel(logging.ERROR)
            with warnings.catch_warnings(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                warnings.simplefilter("ignore")
                yield _Reader(log)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


class _Reader:
    def __init__(self, log: Any) -> None:
        self._log = log

    def read(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()
