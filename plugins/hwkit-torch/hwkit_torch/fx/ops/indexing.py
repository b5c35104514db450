"""Gather/Scatter family, OneHot, Compress, NonZero, Unique, ReverseSequence, TensorScatter.

Negative indices are legal ONNX: they are normalised (at conversion time when constant).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.ops.elementwise import widened
from hwkit_torch.fx.ops.shape import norm_axis
from hwkit_torch.fx.registry import op


def _norm_idx(idx: torch.Tensor, dim: int) -> torch.Tensor:
    idx = idx.to(torch.int64)
    return torch.where(idx < 0, idx + dim, idx)


def _gather(x: torch.Tensor, idx: torch.Tensor, axis: int) -> torch.Tensor:
    # index_select: the output shape depends only on idx's shape (compile-friendly, unlike
    # advanced indexing with a tensor, which dynamo treats as data-dependent).
    idx = _norm_idx(idx, x.shape[axis])
    out = x.index_select(axis, idx.reshape(-1))
    return out.reshape(list(x.shape[:axis]) + list(idx.shape) + list(x.shape[axis + 1:]))


@op("Gather")
def gather(ctx: Ctx, node: NodeInfo, x: Value, idx: Value) -> Value:
    r = ctx.rank(x)
    axis = norm_axis(node.a("axis", 0), r)
    sym = ctx.size_elems(x)
    if sym is not None and isinstance(idx, torch.Tensor):
        flat = [sym[int(i)] for i in idx.reshape(-1).tolist()]
        if idx.dim() <= 1:
            return ctx.sym_tensor(flat, scalar=idx.dim() == 0)
    size = ctx.static_shape(x)[axis]
    if isinstance(idx, torch.Tensor) and size is not None:
        idx = _norm_idx(idx, size)  # folded now: no runtime where()
        if idx.dim() == 0:
            return ctx.call(torch.select, x, axis, int(idx))
    return widened(ctx, _gather, x, idx, axis)


def _gather_elements(x: torch.Tensor, idx: torch.Tensor, axis: int) -> torch.Tensor:
    return torch.gather(x, axis, _norm_idx(idx, x.shape[axis]))


@op("GatherElements")
def gather_elements(ctx: Ctx, node: NodeInfo, x: Value, idx: Value) -> Value:
    axis = norm_axis(node.a("axis", 0), ctx.rank(x))
    return widened(ctx, _gather_elements, x, idx, axis)


def _gather_nd(x: torch.Tensor, idx: torch.Tensor, b: int) -> torch.Tensor:
    k = idx.shape[-1]
    bshape = list(x.shape[:b])
    nb = math.prod(bshape)
    xb = x.reshape([nb] + list(x.shape[b:]))
    ib = idx.reshape(nb, -1, k).to(torch.int64)
    # Each index column is wrapped by its own dim size (a SymInt when dynamic): a tensor built
    # from the sizes would fix symbolic dims to the example size during conversion.
    cols = [torch.where(c < 0, c + x.shape[b + j], c) for j, c in enumerate(ib.unbind(-1))]
    bi = torch.arange(nb, device=x.device).reshape(nb, 1).expand(nb, ib.shape[1])
    out = xb[(bi, *cols)]
    return out.reshape(list(idx.shape[:-1]) + list(x.shape[b + k:]))


@op("GatherND")
def gather_nd(ctx: Ctx, node: NodeInfo, x: Value, idx: Value) -> Value:
    return widened(ctx, _gather_nd, x, idx, node.a("batch_dims", 0))


_REDUCE = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _scatter_elements(x: torch.Tensor, idx: torch.Tensor, upd: torch.Tensor, axis: int,
                      reduction: str) -> torch.Tensor:
    idx = _norm_idx(idx, x.shape[axis])
    if reduction == "none":
        return torch.scatter(x, axis, idx, upd)
    return torch.scatter_reduce(x, axis, idx, upd, _REDUCE[reduction], include_self=True)


@op(("ScatterElements", "Scatter"))
def scatter_elements(ctx: Ctx, node: NodeInfo, x: Value, idx: Value, upd: Value) -> Value:
    axis = norm_axis(node.a("axis", 0), ctx.rank(x))
    return widened(ctx, _scatter_elements, x, idx, upd, axis, node.a("reduction", "none"))


def _scatter_nd(x: torch.Tensor, idx: torch.Tensor, upd: torch.Tensor, reduction: str) -> torch.Tensor:
    k = idx.shape[-1]
    head = list(x.shape[:k])
    rest = list(x.shape[k:])
    flat = x.reshape([math.prod(head)] + rest).clone()
    ii = idx.reshape(-1, k).to(torch.int64)
    ii = torch.where(ii < 0, ii + torch.tensor(head, dtype=torch.int64, device=x.device), ii)
    strides = torch.tensor([math.prod(head[j + 1:]) for j in range(k)], dtype=torch.int64, device=x.device)
    lin = (ii * strides).sum(-1)
    u = upd.reshape([lin.shape[0]] + rest)
    if reduction == "none":
        flat[lin] = u
    else:
        full = lin.reshape([-1] + [1] * len(rest)).expand(u.shape)
        flat = flat.scatter_reduce(0, full, u, _REDUCE[reduction], include_self=True)
    return flat.reshape(x.shape)


@op("ScatterND")
def scatter_nd(ctx: Ctx, node: NodeInfo, x: Value, idx: Value, upd: Value) -> Value:
    return widened(ctx, _scatter_nd, x, idx, upd, node.a("reduction", "none"))


def _one_hot(idx: torch.Tensor, depth: torch.Tensor, values: torch.Tensor, axis: int) -> torch.Tensor:
    d = int(depth.reshape(-1)[0])
    i = idx.to(torch.int64)
    i = torch.where(i < 0, i + d, i)
    r = idx.dim() + 1
    axis = axis % r
    shape = [1] * r
    shape[axis] = d
    hot = i.unsqueeze(axis) == torch.arange(d, device=idx.device).reshape(shape)
    return torch.where(hot, values[1], values[0])


@op("OneHot")
def one_hot(ctx: Ctx, node: NodeInfo, idx: Value, depth: Value, values: Value) -> Value:
    return ctx.call(_one_hot, idx, depth, values, node.a("axis", -1))


def _compress(x: torch.Tensor, cond: torch.Tensor, axis: int | None) -> torch.Tensor:
    if axis is None:
        x = x.reshape(-1)
        axis = 0
    sel = torch.nonzero(cond[: x.shape[axis]]).reshape(-1)
    return x.index_select(axis, sel)


@op("Compress")
def compress(ctx: Ctx, node: NodeInfo, x: Value, cond: Value) -> Value:
    axis = node.a("axis")
    if axis is not None:
        axis = norm_axis(axis, ctx.rank(x))
    return ctx.call(_compress, x, cond, axis)


def _nonzero(x: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(x).t().contiguous()


@op("NonZero")
def nonzero(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_nonzero, x)


def _unique(x: torch.Tensor, axis: int | None, sorted_: bool) -> Any:
    xx = x.reshape(-1) if axis is None else x
    dim = 0 if axis is None else axis
    u, inv, cnt = torch.unique(xx, sorted=True, return_inverse=True, return_counts=True,
                               dim=None if axis is None else axis)
    n = xx.shape[dim]
    first = torch.full((u.shape[dim],), n, dtype=torch.int64, device=x.device).scatter_reduce(
        0, inv.reshape(-1), torch.arange(n, device=x.device), "amin", include_self=True)
    if not sorted_:
        order = torch.argsort(first)
        u = u.index_select(dim, order)
        first, cnt = first[order], cnt[order]
        inv = torch.argsort(order)[inv]
    return u, first, inv.reshape(-1).to(torch.int64), cnt.to(torch.int64)


@op("Unique")
def unique(ctx: Ctx, node: NodeInfo, x: Value) -> Any:
    axis = node.a("axis")
    if axis is not None:
        axis = norm_axis(axis, ctx.rank(x))
    return ctx.call_n(_unique, 4, x, axis, bool(node.a("sorted", 1)))


def _reverse_sequence(x: torch.Tensor, lens: torch.Tensor, batch_axis: int, time_axis: int) -> torch.Tensor:
    nb, nt = x.shape[batch_axis], x.shape[time_axis]
    t = torch.arange(nt, device=x.device).reshape(1, nt)
    ln = lens.to(torch.int64).reshape(nb, 1)
    src = torch.where(t < ln, ln - 1 - t, t)  # [B, T]
    xt = x.movedim((batch_axis, time_axis), (0, 1))
    idx = src.reshape([nb, nt] + [1] * (xt.dim() - 2)).expand(xt.shape)
    return torch.gather(xt, 1, idx).movedim((0, 1), (batch_axis, time_axis))


@op("ReverseSequence")
def reverse_sequence(ctx: Ctx, node: NodeInfo, x: Value, lens: Value) -> Value:
    return ctx.call(_reverse_sequence, x, lens, node.a("batch_axis", 1), node.a("time_axis", 0))


def _tensor_scatter(cache: torch.Tensor, upd: torch.Tensor, wi: Any, axis: int,
                    circular: bool) -> torch.Tensor:
    axis = axis % cache.dim()
    out = cache.clone()
    nb, mx, n = cache.shape[0], cache.shape[axis], upd.shape[axis]
    for b in range(nb):
        start = 0 if wi is None else int(wi[b])
        pos = torch.arange(start, start + n, device=cache.device)
        if circular:
            pos = pos % mx
        ob = out[b]
        ob.index_copy_(axis - 1, pos, upd[b]) if axis > 0 else None
    return out


@op("TensorScatter")
def tensor_scatter(ctx: Ctx, node: NodeInfo, cache: Value, upd: Value, wi: Value = None) -> Value:
    axis = norm_axis(node.a("axis", -2), ctx.rank(cache))
    return ctx.call(_tensor_scatter, cache, upd, wi, axis, node.a("mode", "linear") == "circular")
