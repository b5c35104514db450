"""Peephole fusions on a converted graph, so eager execution matches a hand-written torch model.

Exporters write a Linear layer as ``MatMul(x, W) + B`` with constant W (K×N) and B (N). Run as
two kernels that is an extra pass over the output; torch's own ``nn.Linear`` is one fused
``addmm``. ``fuse_linear`` rewrites the pair into ``F.linear(x, Wᵀ, B)``, and a MatMul by a
constant with no bias (a zero bias the exporter dropped: GPT-2's Conv1D) into ``F.linear(x, Wᵀ)``,
so that every constant-weight product reaches the CPU's oneDNN rewrite (hwkit_torch/onednn.py).
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

_ADDS = {torch.add, operator.add}
_MATMULS = {torch.matmul, operator.matmul}


def fuse_linear(gm: fx.GraphModule) -> int:
    """Rewrite every MatMul-by-constant followed by Add-of-constant-bias; returns how many."""
    fused = 0
    transposed: dict[str, str] = {}  # weight attribute -> its transposed copy
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in _ADDS or node.kwargs or len(node.args) != 2:
            continue
        for product, bias in (node.args, node.args[::-1]):
            match = _linear_parts(gm, product, bias)
            if match is None:
                continue
            _replace(gm, node, match[0], _transposed(gm, match[1], transposed), bias)
            gm.graph.erase_node(product)
            fused += 1
            break
    for node in list(gm.graph.nodes):  # what is left: products by a constant without a bias
        if node.op == "call_function" and node.target in _MATMULS and len(node.args) == 2 and not node.kwargs:
            match = _linear_parts(gm, node, node.args[1], bias_columns=False)
            if match is not None:
                _replace(gm, node, match[0], _transposed(gm, match[1], transposed), None)
                fused += 1
    if fused:
        gm.graph.eliminate_dead_code()
        gm.graph.lint()
        gm.recompile()
    return fused


def _transposed(gm: fx.GraphModule, weight: str, transposed: dict[str, str]) -> str:
    """The attribute holding Wᵀ (made once per weight)."""
    if weight not in transposed:
        name = f"{weight}_linear_t"
        gm.register_buffer(name, getattr(gm, weight).t().contiguous())
        transposed[weight] = name
    return transposed[weight]


def _replace(gm: fx.GraphModule, node: fx.Node, x: fx.Node, weight_t: str, bias: Any) -> None:
    with gm.graph.inserting_before(node):
        linear = gm.graph.call_function(F.linear, (x, gm.graph.get_attr(weight_t), bias))
    linear.meta = dict(node.meta)
    node.replace_all_uses_with(linear)
    gm.graph.erase_node(node)


def _linear_parts(gm: fx.GraphModule, product: object, bias: object,
                  bias_columns: bool = True) -> tuple[fx.Node, str] | None:
    """(x, W's attribute name) when ``product`` is matmul(x, W) used only here, W a constant 2-D
    float matrix and ``bias`` a constant 1-D vector of W's column count and dtype; else None.
    ``bias_columns=False``: no bias; ``bias`` is W itself, only its dtype is checked."""
    if not (isinstance(product, fx.Node) and product.op == "call_function" and product.target in _MATMULS
            and (len(product.users) == 1 or not bias_columns) and len(product.args) == 2 and not product.kwargs):
        return None
    x, weight = product.args
    if not (isinstance(weight, fx.Node) and weight.op == "get_attr" and isinstance(weight.target, str)
            and isinstance(bias, fx.Node) and bias.op == "get_attr" and isinstance(bias.target, str)
            and isinstance(x, fx.Node)):
        return None
    w, b = getattr(gm, weight.target, None), getattr(gm, bias.target, None)
    value = x.meta.get("val")
    if not (isinstance(w, torch.Tensor) and isinstance(b, torch.Tensor) and isinstance(value, torch.Tensor)):
        return None
    if not bias_columns:
        b = w[0]  # stands in for the bias: the dtype check below
    if not (w.dim() == 2 and b.dim() == 1 and b.shape[0] == w.shape[1] and w.dtype == b.dtype == value.dtype
            and w.dtype.is_floating_point and value.dim() >= 2):
        return None  # a matmul with broadcasting, integers, or a bias of another shape: leave it
    return x, weight.target
