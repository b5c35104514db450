"""onnx2tf's and TensorFlow's failures, as hwkit errors: the one place they are mapped.

The conversion runs in a child (``hwkit_tensorflow.convert_worker``) whose output is kept, not
shown; onnx2tf reports problems as coloured ``ERROR:`` lines and then calls ``sys.exit(1)``, the
TFLite converter raises with a multi-line report, and the child adds one ``HWKIT-FAILURE:`` line
of its own for any exception. This module turns all of that into one line that names the fix.
"""

from __future__ import annotations

import re
import signal
from typing import Any

from hwkit.errors import CompileError, UnsupportedOpError

from hwkit_tensorflow.convert_worker import FAILURE

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NOT_IMPLEMENTED = re.compile(r"(\w+) OP is not yet implemented")
# The TF ops the TFLite converter cannot express with LiteRT's builtin kernels (they need Flex).
_SELECT = re.compile(r"TF Select ops: ([^\n]+)")
_NEITHER = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_FIX = "use onnxruntime or openvino for this model (hwkit bench -b onnxruntime,openvino)"


def conversion_failed(model: Any, backend: str, stage: str, returncode: int, output: str) -> Exception:
    """The hwkit error for a conversion child that exited with ``returncode`` and printed ``output``.

    ``stage`` is "onnx2tf" (ONNX -> SavedModel) or "tflite" (SavedModel -> .tflite).
    """
    text = _ANSI.sub("", output)
    missing = sorted(set(_NOT_IMPLEMENTED.findall(text)))
    if missing:
        return UnsupportedOpError(backend, model.nodes_by_op(missing))
    name = getattr(model, "name", "the model")
    flex = {op.strip() for found in _SELECT.findall(text) for op in found.split(",")} | set(_NEITHER.findall(text))
    if stage == "tflite" and flex:
        ops = sorted(op for op in flex if op)
        return CompileError(f"LiteRT has no builtin kernels for {', '.join(ops)} that onnx2tf made of '{name}'; "
                            "run it with -b tensorflow instead")
    if returncode < 0:
        try:
            died = signal.Signals(-returncode).name
        except ValueError:
            died = f"signal {-returncode}"
        return CompileError(f"the {stage} conversion of '{name}' died with {died}; {_FIX}")
    return CompileError(f"{stage} could not convert '{name}': {_diagnosis(text)}; {_FIX}")


def _diagnosis(text: str) -> str:
    """The most telling line of the child's output, at most 300 characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    ours = [line[len(FAILURE):] for line in lines if line.startswith(FAILURE)]
    errors = [re.sub(r"^ERROR:\s*", "", line) for line in lines if line.startswith("ERROR:")]
    # onnx2tf's own ERROR lines say what it tripped on; the exception line comes after them.
    chosen = (errors[:1] + ours[-1:]) if errors else (ours[-1:] or lines[-1:] or ["no output (exit status only)"])
    summary = " ".join(" ".join(chosen).split())
    return summary if len(summary) <= 300 else summary[:297] + "..."
