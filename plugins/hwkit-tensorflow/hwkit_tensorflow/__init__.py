"""hwkit plugin: the ``tensorflow`` and ``litert`` backends, both on one onnx2tf conversion.

Imports nothing heavy: TensorFlow, onnx2tf and LiteRT are imported inside the backends' methods
(the conversion itself runs in a child process, see ``hwkit_tensorflow.convert``).
"""

from __future__ import annotations

from hwkit import hookimpl

from hwkit_tensorflow.litert_backend import LiteRtBackend
from hwkit_tensorflow.tf_backend import TensorFlowBackend

__all__ = ["LiteRtBackend", "TensorFlowBackend"]


@hookimpl
def hwkit_register_backends() -> list[type]:
    return [TensorFlowBackend, LiteRtBackend]
