"""Linear algebra and axis-wise math: MatMul, Gemm, Softmax family, Einsum, CumSum, TopK, Det."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.ops.elementwise import widened
from hwkit_torch.fx.ops.shape import norm_axis
from hwkit_torch.fx.registry import op


@op("MatMul")
def matmul(ctx: Ctx, node: NodeInfo, a: Value, b: Value) -> Value:
    return widened(ctx, torch.matmul, a, b)


def _gemm(a: torch.Tensor, b: torch.Tensor, c: Any, alpha: float, beta: float,
          ta: bool, tb: bool) -> torch.Tensor:
    if ta:
        a = a.t()
    if tb:
        b = b.t()
    y = a @ b
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


@op("Gemm")
def gemm(ctx: Ctx, node: NodeInfo, a: Value, b: Value, c: Value = None) -> Value:
    alpha, beta = node.a("alpha", 1.0), node.a("beta", 1.0)
    ta, tb = bool(node.a("transA", 0)), bool(node.a("transB", 0))
    # The exporters' Linear layer: one fused addmm (F.linear) instead of a Python helper with
    # a transpose, a matmul and an add; torch's own nn.Linear takes exactly this path.
    if (tb and not ta and alpha == 1.0 and beta == 1.0 and ctx.dtype(a).is_floating_point
            and (c is None or ctx.rank(c) <= 1)):
        return ctx.call(F.linear, a, b, c)
    # The same layer with the weight stored (in, out), as transformers' Conv1D (GPT-2) exports:
    # MatMul + Add in the graph, which fuse_linear turns into F.linear with Wᵀ, and from there
    # the CPU runs it on oneDNN (hwkit_torch/onednn.py) instead of through _gemm on MKL.
    if (not tb and not ta and alpha == 1.0 and beta == 1.0 and ctx.dtype(a).is_floating_point
            and (c is None or ctx.rank(c) <= 1)):
        product = ctx.call(torch.matmul, a, b)
        return product if c is None else ctx.call(torch.add, product, c)
    return ctx.call(_gemm, a, b, c, alpha, beta, ta, tb)


def _softmax_2d(x: torch.Tensor, axis: int, kind: str) -> torch.Tensor:
    # Opset < 13: the input is coerced to 2-D [prod(shape[:axis]), prod(shape[axis:])].
    shp = x.shape
    x2 = x.reshape(math.prod(shp[:axis]) if axis else 1, -1)
    return _softmax_nd(x2, 1, kind).reshape(shp)


def _softmax_nd(x: torch.Tensor, axis: int, kind: str) -> torch.Tensor:
    if kind == "softmax":
        return torch.softmax(x, axis)
    if kind == "logsoftmax":
        return torch.log_softmax(x, axis)
    idx = x.argmax(axis, keepdim=True)
    return torch.zeros_like(x).scatter_(axis, idx, 1)


def _softmax_family(kind: str) -> Any:
    def handler(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
        r = ctx.rank(x)
        if node.opset < 13:
            axis = norm_axis(node.a("axis", 1), r)
            if axis == r - 1:
                return ctx.call(_softmax_nd, x, axis, kind)
            return ctx.call(_softmax_2d, x, axis, kind)
        return ctx.call(_softmax_nd, x, norm_axis(node.a("axis", -1), r), kind)

    return handler


op("Softmax")(_softmax_family("softmax"))
op("LogSoftmax")(_softmax_family("logsoftmax"))
op("Hardmax")(_softmax_family("hardmax"))


@op("Einsum")
def einsum(ctx: Ctx, node: NodeInfo, *xs: Value) -> Value:
    return widened(ctx, _einsum, *xs, eq=node.a("equation").replace(" ", ""))


def _einsum(*xs: torch.Tensor, eq: str) -> torch.Tensor:
    return torch.einsum(eq, *xs)


def _cum(x: torch.Tensor, axis: Any, exclusive: bool, reverse: bool, prod: bool) -> torch.Tensor:
    if isinstance(axis, torch.Tensor):
        axis = int(axis.reshape(-1)[0])
    axis = axis % x.dim()
    if reverse:
        x = x.flip(axis)
    if exclusive:
        fill = torch.ones_like(x.narrow(axis, 0, 1)) if prod else torch.zeros_like(x.narrow(axis, 0, 1))
        x = torch.cat([fill, x.narrow(axis, 0, x.shape[axis] - 1)], axis)
    y = torch.cumprod(x, axis) if prod else torch.cumsum(x, axis)
    y = y.to(x.dtype)
    return y.flip(axis) if reverse else y


def _cum_handler(prod: bool) -> Any:
    def handler(ctx: Ctx, node: NodeInfo, x: Value, axis: Value) -> Value:
        e = ctx.elems(axis)
        ax: Any = e[0] if e else axis
        return widened(ctx, _cum, x, ax, bool(node.a("exclusive", 0)),
                       bool(node.a("reverse", 0)), prod)

    return handler


op("CumSum")(_cum_handler(False))
op("CumProd")(_cum_handler(True))


def _topk(x: torch.Tensor, k: Any, axis: int, largest: bool, sorted_: bool) -> Any:
    if isinstance(k, torch.Tensor):
        k = int(k.reshape(-1)[0])
    if largest:
        # torch.topk breaks ties arbitrarily; ONNX wants the lower index first.
        v, i = torch.sort(x, dim=axis, descending=True, stable=True)
    else:
        v, i = torch.sort(x, dim=axis, descending=False, stable=True)
    return v.narrow(axis, 0, k), i.narrow(axis, 0, k)


@op("TopK")
def topk(ctx: Ctx, node: NodeInfo, x: Value, k: Value = None) -> Any:
    r = ctx.rank(x)
    axis = norm_axis(node.a("axis", -1), r)
    if node.opset < 10:
        kk: Any = node.a("k")
    else:
        e = ctx.elems(k)
        kk = e[0] if e else k
    return ctx.call_n(_topk, 2, x, kk, axis, bool(node.a("largest", 1)), bool(node.a("sorted", 1)))


@op("Det")
def det(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(torch.linalg.det, x)


def _matmul_integer(a: torch.Tensor, b: torch.Tensor, az: Any, bz: Any) -> torch.Tensor:
    a = a.to(torch.int32)
    b = b.to(torch.int32)
    if az is not None:
        az = az.to(torch.int32)
        a = a - (az if az.dim() == 0 else az.reshape(-1, 1) if a.dim() > 1 and az.numel() > 1 else az)
    if bz is not None:
        b = b - bz.to(torch.int32)
    # int32 matmul has no CPU kernel for every shape; int64 is exact here.
    return (a.to(torch.int64) @ b.to(torch.int64)).to(torch.int32)


@op("MatMulInteger")
def matmul_integer(ctx: Ctx, node: NodeInfo, a: Value, b: Value, az: Value = None,
                   bz: Value = None) -> Value:
    return ctx.call(_matmul_integer, a, b, az, bz)


_ = F
