"""Reductions (Reduce*, ArgMax/ArgMin)."""

from __future__ import annotations

import math
from typing import Any

import torch

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.dtypes import WIDE_UNSIGNED
from hwkit_torch.fx.ops.shape import norm_axis
from hwkit_torch.fx.registry import op


def _empty_value(kind: str, dt: torch.dtype) -> float:
    if dt == torch.bool:
        return kind in ("min", "prod")
    if kind in ("max", "logsumexp", "logsum"):
        return -math.inf if dt.is_floating_point else torch.iinfo(dt).min
    if kind == "min":
        return math.inf if dt.is_floating_point else torch.iinfo(dt).max
    if kind == "prod":
        return 1
    return 0


def _reduce(x: torch.Tensor, axes: Any, keepdims: bool, kind: str, noop: bool) -> torch.Tensor:
    if isinstance(axes, torch.Tensor):
        axes = [int(a) for a in axes.reshape(-1).tolist()]
    if axes is not None and len(axes) == 0:
        axes = None
    if axes is None and noop:
        return x
    r = x.dim()
    dims = list(range(r)) if axes is None else sorted({a % max(r, 1) for a in axes})
    dt = x.dtype
    if x.numel() == 0 and any(x.shape[d] == 0 for d in dims):
        shape = [1 if i in dims else s for i, s in enumerate(x.shape)] if keepdims else [
            s for i, s in enumerate(x.shape) if i not in dims]
        return torch.full(shape, _empty_value(kind, dt), dtype=dt, device=x.device)
    if not dims:
        return x.clone() if kind not in ("l1", "l2", "sumsquare", "logsum", "logsumexp") else _reduce_empty_dims(x, kind)
    if kind == "sum":
        y = torch.sum(x, dim=dims, keepdim=keepdims)
    elif kind == "mean":
        y = torch.mean(x, dim=dims, keepdim=keepdims) if dt.is_floating_point else (
            torch.sum(x, dim=dims, keepdim=keepdims) // math.prod(x.shape[d] for d in dims))
    elif kind == "max":
        y = torch.amax(x, dim=dims, keepdim=keepdims) if dt != torch.bool else torch.amax(
            x.to(torch.uint8), dim=dims, keepdim=keepdims).to(torch.bool)
    elif kind == "min":
        y = torch.amin(x, dim=dims, keepdim=keepdims) if dt != torch.bool else torch.amin(
            x.to(torch.uint8), dim=dims, keepdim=keepdims).to(torch.bool)
    elif kind == "prod":
        y = x
        for d in sorted(dims, reverse=True):
            y = torch.prod(y, dim=d, keepdim=keepdims)
    elif kind == "l1":
        y = torch.sum(torch.abs(x), dim=dims, keepdim=keepdims)
    elif kind == "l2":
        y = torch.sqrt(torch.sum(x * x, dim=dims, keepdim=keepdims))
    elif kind == "sumsquare":
        y = torch.sum(x * x, dim=dims, keepdim=keepdims)
    elif kind == "logsum":
        y = torch.log(torch.sum(x, dim=dims, keepdim=keepdims))
    else:  # logsumexp
        y = torch.logsumexp(x, dim=dims, keepdim=keepdims)
    return y.to(dt)


def _reduce_empty_dims(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "l1":
        return torch.abs(x)
    if kind == "l2":
        return torch.sqrt(x * x)
    if kind == "sumsquare":
        return x * x
    if kind == "logsum":
        return torch.log(x)
    return x.clone()


def _reducer(kind: str, axes_input_since: int) -> Any:
    def handler(ctx: Ctx, node: NodeInfo, x: Value, axes: Value = None) -> Value:
        keep = bool(node.a("keepdims", 1))
        noop = bool(node.a("noop_with_empty_axes", 0))
        if node.opset >= axes_input_since:
            ax: Any = None if axes is None else ctx.elems(axes)
            if axes is not None and ax is None:
                meta = None
                n_ax = ctx.static_shape(axes)[0] if ctx.rank(axes) == 1 else None
                if keep:
                    meta = ctx.empty_meta([None] * ctx.rank(x), ctx.dtype(x))
                elif n_ax:
                    meta = ctx.empty_meta([None] * (ctx.rank(x) - n_ax), ctx.dtype(x))
                return ctx.call(_reduce, x, axes, keep, kind, noop, _meta=meta)
        else:
            ax = node.a("axes")
        return _call(ctx, x, ax, keep, kind, noop)

    return handler


def _call(ctx: Ctx, x: Value, ax: Any, keep: bool, kind: str, noop: bool) -> Value:
    if ctx.dtype(x) in WIDE_UNSIGNED or (ctx.dtype(x) == torch.uint8 and kind in ("l1",)):
        dt = ctx.dtype(x)
        return ctx.cast(ctx.call(_reduce, ctx.cast(x, torch.int64), ax, keep, kind, noop), dt)
    return ctx.call(_reduce, x, ax, keep, kind, noop)


for _name, _kind, _since in (
    ("ReduceSum", "sum", 13), ("ReduceMean", "mean", 18), ("ReduceMax", "max", 18),
    ("ReduceMin", "min", 18), ("ReduceProd", "prod", 18), ("ReduceL1", "l1", 18),
    ("ReduceL2", "l2", 18), ("ReduceSumSquare", "sumsquare", 18),
    ("ReduceLogSum", "logsum", 18), ("ReduceLogSumExp", "logsumexp", 18),
):
    op(_name)(_reducer(_kind, _since))


def _arg(x: torch.Tensor, axis: int, keepdims: bool, last: bool, largest: bool) -> torch.Tensor:
    if last:
        x = x.flip(axis)
    y = torch.argmax(x, axis, keepdim=True) if largest else torch.argmin(x, axis, keepdim=True)
    if last:
        y = x.shape[axis] - 1 - y
    return y if keepdims else y.squeeze(axis)


def _arg_handler(largest: bool) -> Any:
    def handler(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
        axis = norm_axis(node.a("axis", 0), ctx.rank(x))
        if ctx.dtype(x) in WIDE_UNSIGNED:
            x = ctx.cast(x, torch.int64)
        return ctx.call(_arg, x, axis, bool(node.a("keepdims", 1)),
                        bool(node.a("select_last_index", 0)), largest)

    return handler


op("ArgMax")(_arg_handler(True))
op("ArgMin")(_arg_handler(False))
