"""hwkit's ONNX -> ``torch.fx.GraphModule`` converter (used by the cpu and cuda backends).

::

    from hwkit_torch.fx import convert, supported_ops
    gm = convert(model)           # gm(*inputs) -> tuple of tensors, in graph.output order
"""

from __future__ import annotations

from hwkit_torch.fx import ops  # noqa: F401  (importing the op modules registers the handlers)
from hwkit_torch.fx.converter import convert
from hwkit_torch.fx.registry import supported_ops

__all__ = ["convert", "supported_ops"]
