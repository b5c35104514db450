"""Tensors made from attributes or shapes (Constant, ConstantOfShape, Range, EyeLike) and
layout ops (Trilu, DepthToSpace, SpaceToDepth, CenterCropPad)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.fx as fx

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.dtypes import ONNX_TO_TORCH
from hwkit_torch.fx.ops.elementwise import widened
from hwkit_torch.fx.ops.shape import norm_axis, unknown_dims_meta
from hwkit_torch.fx.registry import NotSupported, op


@op("ConstantOfShape")
def constant_of_shape(ctx: Ctx, node: NodeInfo, shape_: Value) -> Value:
    v = node.a("value")
    val = v.reshape(-1)[0].item() if v is not None else 0.0
    dt = v.dtype if v is not None else torch.float32
    dims = ctx.ints(shape_)
    if dims is None:
        return ctx.call(_full_rt, shape_, val, dt, _meta=unknown_dims_meta(ctx, shape_, dt))
    if all(isinstance(d, int) for d in dims):
        return torch.full(list(dims), val, dtype=dt)
    return ctx.call(torch.full, list(dims), val, dtype=dt, device=ctx.device())


def _full_rt(shape_: torch.Tensor, val: Any, dt: torch.dtype) -> torch.Tensor:
    return torch.full([int(s) for s in shape_.tolist()], val, dtype=dt, device=shape_.device)


@op("Constant")
def constant(ctx: Ctx, node: NodeInfo) -> Value:
    a = node.attrs
    if "value" in a:
        if not isinstance(a["value"], torch.Tensor):
            raise NotSupported("string constants")
        return a["value"]
    if "sparse_value" in a:
        return a["sparse_value"]
    for k, dt in (("value_float", torch.float32), ("value_int", torch.int64),
                  ("value_floats", torch.float32), ("value_ints", torch.int64)):
        if k in a:
            return torch.tensor(a[k], dtype=dt)
    raise NotSupported("string constants")


def _range(start: Any, limit: Any, delta: Any) -> torch.Tensor:
    n = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    dt = start.dtype
    if dt.is_floating_point:
        return (start + torch.arange(n, dtype=dt, device=start.device) * delta).to(dt)
    return torch.arange(int(start), int(start) + n * int(delta), int(delta), dtype=dt, device=start.device)[:n]


@op("Range")
def range_(ctx: Ctx, node: NodeInfo, start: Value, limit: Value, delta: Value) -> Value:
    bounds = [ctx.elems(v) for v in (start, limit, delta)]
    if ctx.dtype(start) == torch.int64 and all(b is not None and len(b) == 1 for b in bounds):
        # Integer bounds known as ints or sizes (e.g. Range(0, Shape(x)[1])): arange over the
        # sizes keeps the length symbolic, so the graph also compiles with dynamic shapes.
        first, last, step = (b[0] for b in bounds)  # type: ignore[index]
        if not all(isinstance(b, int) for b in (first, last, step)):  # all ints: folded below
            return ctx.call(torch.arange, first, last, step, dtype=torch.int64, device=ctx.device())
    return ctx.call(_range, start, limit, delta)


def _eye_like(x: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    n, m = x.shape
    i = torch.arange(n, device=x.device)[:, None]
    j = torch.arange(m, device=x.device)[None, :]
    return (j - i == k).to(dtype)


@op("EyeLike")
def eye_like(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    dt = ONNX_TO_TORCH[node.a("dtype")] if node.a("dtype") is not None else ctx.dtype(x)
    return ctx.call(_eye_like, x, node.a("k", 0), dt)


def _trilu(x: torch.Tensor, k: int, upper: bool) -> torch.Tensor:
    return torch.triu(x, k) if upper else torch.tril(x, k)


@op("Trilu")
def trilu(ctx: Ctx, node: NodeInfo, x: Value, k: Value = None) -> Value:
    kk = 0 if k is None else (ctx.elems(k) or [k])[0]
    if isinstance(kk, fx.Node):
        kk = ctx.method("item", kk)
    return widened(ctx, _trilu, x, kk, bool(node.a("upper", 1)))


def _depth_to_space(x: torch.Tensor, b: int, crd: bool) -> torch.Tensor:
    n, c, h, w = x.shape
    if crd:
        y = x.reshape(n, c // (b * b), b, b, h, w).permute(0, 1, 4, 2, 5, 3)
    else:
        y = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


@op("DepthToSpace")
def depth_to_space(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_depth_to_space, x, node.a("blocksize"), node.a("mode", "DCR") == "CRD")


def _space_to_depth(x: torch.Tensor, b: int, crd: bool) -> torch.Tensor:
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b)
    y = y.permute(0, 1, 3, 5, 2, 4) if crd else y.permute(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


@op("SpaceToDepth")
def space_to_depth(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_space_to_depth, x, node.a("blocksize"), node.a("mode", "DCR") == "CRD")


def _center_crop_pad(x: torch.Tensor, axes: list[int], shape_: list[int]) -> torch.Tensor:
    for a, s in zip(axes, shape_):
        d = x.shape[a]
        if s < d:
            off = (d - s) // 2
            x = x.narrow(a, off, s)
        elif s > d:
            before = (s - d) // 2
            pad_shape = list(x.shape)
            pad_shape[a] = s
            y = torch.zeros(pad_shape, dtype=x.dtype, device=x.device)
            y.narrow(a, before, d).copy_(x)
            x = y
    return x


@op("CenterCropPad")
def center_crop_pad(ctx: Ctx, node: NodeInfo, x: Value, shape_: Value) -> Value:
    r = ctx.rank(x)
    s = ctx.elems(shape_)
    axes = [norm_axis(a, r) for a in node.a("axes", list(range(r)))]
    if s is None:
        return ctx.call(_center_crop_pad_rt, x, axes, shape_,
                        _meta=ctx.empty_meta([None] * r, ctx.dtype(x)))
    return ctx.call(_center_crop_pad, x, axes, s)


def _center_crop_pad_rt(x: torch.Tensor, axes: list[int], shape_: torch.Tensor) -> torch.Tensor:
    return _center_crop_pad(x, axes, [int(v) for v in shape_.tolist()])
