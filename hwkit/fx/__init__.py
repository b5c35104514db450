"""hwkit's ONNX -> ``torch.fx.GraphModule`` converter (used by the PyTorch backends).

::

    from hwkit.fx import convert, supported_ops
    gm = convert(model)           # gm(*inputs) -> tuple of tensors, in graph.output order
"""

from __future__ import annotations

from hwkit.fx.converter import convert
from hwkit.fx.registry import supported_ops

__all__ = ["convert", "supported_ops"]
