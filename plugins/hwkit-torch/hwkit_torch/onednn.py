"""Linear layers on oneDNN instead of MKL, for fp32 graphs on the CPU.

``F.linear`` on the CPU calls MKL's sgemm. Measured (torch 2.13, MKL 2024.2, 2-core AMD EPYC
with AVX-512, one thread): a [128, 256] x [256, 1024] linear took 0.60 ms through MKL and 0.29 ms
through oneDNN's ``mkldnn._linear_pointwise`` (MKL does not use its AVX-512 kernels on AMD
CPUs); the built-in encoder ran 9.4 → 5.3 ms eager and 9.3 → 5.3 ms with compile=fast, within
3.5e-6 of the MKL results.

Weights are prepacked (``mkldnn._reorder_linear_weight``, oneDNN's blocked layout) once, not
reordered on every call: 7 % less per linear of the encoder's sizes, and the encoder under
compile=fast 2.95 → 2.82 ms (2 threads). The packed tensor replaces the weight in the graph.
This is the eager path: under compile=fast, Inductor's freezing packs the linears for oneDNN
itself (hwkit_torch/inductor_onednn.py), which also fuses their epilogues. fp32 only: under bf16
autocast ``F.linear`` is autocast, the oneDNN op is not.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import fx


def available() -> bool:
    return bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)


def use_onednn_linear(gm: fx.GraphModule) -> int:
    """Rewrite fp32 ``F.linear(x, W, b)`` with constant 2-D weight and bias (or none) into oneDNN's
    linear on a prepacked weight; returns how many."""
    count = 0
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target is not F.linear or node.kwargs:
            continue
        x, weight, bias = (*node.args, None)[:3] if len(node.args) == 2 else node.args
        w, b = _constant(gm, weight), _constant(gm, bias)
        if not (_f32(x) and w is not None and w.dtype == torch.float32 and w.dim() == 2
                and (bias is None or (b is not None and b.dtype == torch.float32))):
            continue
        packed_name = f"{weight.target}_onednn"
        gm.register_buffer(packed_name, torch.ops.mkldnn._reorder_linear_weight(w), persistent=False)
        with gm.graph.inserting_before(node):
            packed = gm.graph.get_attr(packed_name)
        node.target = torch.ops.mkldnn._linear_pointwise.default
        node.args = (x, packed, bias, "none", [], "")
        if not weight.users:  # the unpacked copy is dead weight now
            gm.graph.erase_node(weight)
        count += 1
    if count:
        gm.delete_all_unused_submodules()
        gm.recompile()
    return count


def _constant(gm: fx.GraphModule, v: Any) -> torch.Tensor | None:
    """The tensor of a get_attr node (fuse_linear's weights carry no meta)."""
    if isinstance(v, fx.Node) and v.op == "get_attr" and isinstance(v.target, str):
        t = getattr(gm, v.target, None)
        return t if isinstance(t, torch.Tensor) else None
    return None


def _f32(v: Any) -> bool:
    value = v.meta.get("val") if isinstance(v, fx.Node) else None
    return isinstance(value, torch.Tensor) and value.dtype == torch.float32 and value.dim() >= 1
