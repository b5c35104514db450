"""Shape manipulation: Shape/Size/Reshape/Flatten/(Un)Squeeze/Transpose/Concat/Split/Slice/...

Shape values are kept symbolic (``Ctx.sym_elems``) so that Shape -> Gather -> Concat ->
Reshape chains fold to Python ints for static dims and ``x.size(i)`` for dynamic ones.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from hwkit_torch.fx import symshape
from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.registry import NotSupported, op


def norm_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise NotSupported(f"axis {axis} out of range for rank {rank}")
    return axis % rank if rank else 0


@op("Shape")
def shape(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    r = ctx.rank(x)
    start, end = node.a("start", 0), node.a("end", r)
    start = min(max(start + r if start < 0 else start, 0), r)
    end = min(max(end + r if end < 0 else end, 0), r)
    return ctx.sym_tensor([ctx.size(x, i) for i in range(start, end)])


@op("Size")
def size(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    n: Any = 1
    for d in ctx.sizes(x):
        n = n * d if isinstance(n, int) and isinstance(d, int) else ctx.call(_mul, n, d)
    return ctx.sym_tensor([n], scalar=True)


def _mul(a: Any, b: Any) -> Any:
    return a * b


@op("Reshape", since=5)
def reshape(ctx: Ctx, node: NodeInfo, x: Value, shape_: Value) -> Value:
    dims = ctx.ints(shape_)
    if dims is None:
        return ctx.call(_reshape_rt, x, shape_, bool(node.a("allowzero", 0)),
                        _meta=unknown_dims_meta(ctx, shape_, ctx.dtype(x)))
    if not node.a("allowzero", 0):
        dims = [ctx.size(x, i) if (isinstance(d, int) and d == 0) else d for i, d in enumerate(dims)]
    kept = symshape.flat(ctx, x, list(dims))  # a shape value flattened: still known
    return kept if kept is not None else ctx.method("reshape", x, list(dims))


def unknown_dims_meta(ctx: Ctx, shape_: Value, dtype: torch.dtype, min_rank: int = 0) -> Any:
    """Meta for a result whose rank is the (static) length of ``shape_`` and dims unknown."""
    n = ctx.static_shape(shape_)[0] if ctx.rank(shape_) == 1 else None
    if n is None:
        return None
    return ctx.empty_meta([None] * max(n, min_rank), dtype)


def _reshape_rt(x: torch.Tensor, shape_: torch.Tensor, allowzero: bool) -> torch.Tensor:
    dims = [int(d) for d in shape_.tolist()]
    if not allowzero:
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


@op("Reshape", until=4)
def reshape_v1(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return reshape(ctx, node, x, torch.tensor(node.a("shape"), dtype=torch.int64))


@op("Flatten")
def flatten(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    r = ctx.rank(x)
    axis = node.a("axis", 1)
    axis = axis + r if axis < 0 else axis
    if axis == 0:
        return ctx.method("reshape", x, [1, -1])
    left: Any = 1
    for d in ctx.sizes(x)[:axis]:
        left = left * d if isinstance(left, int) and isinstance(d, int) else ctx.call(_mul, left, d)
    return ctx.method("reshape", x, [left, -1])


def _axes(ctx: Ctx, node: NodeInfo, axes: Value) -> list[int] | None:
    if node.opset >= 13:
        return None if axes is None else ctx.ints(axes)
    return node.a("axes")


def _squeeze_rt(x: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    ax = tuple(int(a) % x.dim() for a in axes.tolist())
    return torch.squeeze(x, ax)


def _unsqueeze_rt(x: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    r = x.dim() + axes.numel()
    for a in sorted(int(a) % r for a in axes.tolist()):
        x = x.unsqueeze(a)
    return x


@op("Squeeze")
def squeeze(ctx: Ctx, node: NodeInfo, x: Value, axes: Value = None) -> Value:
    ax = _axes(ctx, node, axes)
    r = ctx.rank(x)
    if ax is None and axes is not None:
        return ctx.call(_squeeze_rt, x, axes)
    if ax is None:
        if None in ctx.static_shape(x):
            return ctx.call(torch.squeeze, x)  # which dims are 1 is only known at run time
        ax = [i for i, d in enumerate(ctx.static_shape(x)) if d == 1]
    ax = sorted({norm_axis(a, r) for a in ax})
    sym = ctx.size_elems(x)
    if sym is not None and ax == [0]:
        return ctx.sym_tensor(sym, scalar=True)
    if not ax:
        return x
    meta = None
    if any(ctx.static_shape(x)[a] is None for a in ax):
        # ONNX guarantees these dims are 1; fake tensors cannot know it for unknown sizes.
        m = ctx.meta(x)
        meta = ctx.empty_meta([m.shape[i] for i in range(r) if i not in ax], m.dtype)
    return ctx.call(torch.squeeze, x, tuple(ax), _meta=meta)


@op("Unsqueeze")
def unsqueeze(ctx: Ctx, node: NodeInfo, x: Value, axes: Value = None) -> Value:
    ax = _axes(ctx, node, axes)
    if ax is None:
        return ctx.call(_unsqueeze_rt, x, axes)
    r = ctx.rank(x) + len(ax)
    ax = sorted(norm_axis(a, r) for a in ax)
    sym = ctx.size_elems(x)
    if sym is not None and ctx.rank(x) == 0 and ax == [0]:
        return ctx.sym_tensor(sym)
    for a in ax:
        x = ctx.call(torch.unsqueeze, x, a)
    return x


@op("Transpose")
def transpose(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    r = ctx.rank(x)
    perm = node.a("perm") or list(range(r))[::-1]
    return ctx.method("permute", x, [norm_axis(p, r) for p in perm])


@op("Concat")
def concat(ctx: Ctx, node: NodeInfo, *xs: Value) -> Value:
    xs = tuple(x for x in xs if x is not None)
    if any(ctx.size_elems(x) is not None for x in xs):
        out: list[Any] = []
        for x in xs:
            e = ctx.elems(x)
            if e is None:
                break
            out += e
        else:
            return ctx.sym_tensor(out)  # a shape built from sizes stays known element by element
    r = ctx.rank(xs[0])
    axis = norm_axis(node.a("axis", 0), r)
    if len(xs) == 1:
        return xs[0]
    return ctx.call(torch.cat, list(xs), dim=axis)


@op("Split")
def split(ctx: Ctx, node: NodeInfo, x: Value, split_: Value = None) -> Any:
    r = ctx.rank(x)
    axis = norm_axis(node.a("axis", 0), r)
    sizes = node.a("split") if node.opset < 13 else (
        None if split_ is None else ctx.ints(split_)
    )
    n = node.n_outputs
    if split_ is not None and sizes is None:
        return ctx.call_n(_split_rt, n, x, split_, axis)
    if sizes is None:
        dim = ctx.static_shape(x)[axis]
        num = node.a("num_outputs", n)
        if dim is None:
            if num == n and n > 0:
                return ctx.call_n(_split_n, n, x, n, axis)
            raise NotSupported("split of a dynamic dim")
        chunk = math.ceil(dim / num)
        sizes = [min(chunk, dim - i * chunk) for i in range(num)]
    return list(ctx.call(torch.split, x, list(sizes), dim=axis))


def _split_n(x: torch.Tensor, n: int, axis: int) -> tuple[torch.Tensor, ...]:
    # ONNX num_outputs: chunks of ceil(dim / n), the last one smaller.
    return torch.split(x, -(-x.shape[axis] // n), dim=axis)


def _split_rt(x: torch.Tensor, sizes: torch.Tensor, axis: int) -> tuple[torch.Tensor, ...]:
    return torch.split(x, [int(s) for s in sizes.tolist()], dim=axis)


def _slice_params(dim: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    s, e, st = slice(start, end, step).indices(dim)
    return s, e, st


def _neg_slice(x: torch.Tensor, axis: int, start: int, end: int, step: int) -> torch.Tensor:
    idx = torch.arange(start, end, step, device=x.device)
    return x.index_select(axis, idx)


@op("Slice")
def slice_(ctx: Ctx, node: NodeInfo, x: Value, starts: Value = None, ends: Value = None,
           axes: Value = None, steps: Value = None) -> Value:
    st: list[Any]
    en: list[Any]
    ax: list[Any] | None
    sp: list[Any] | None
    if node.opset < 10:
        st, en, ax, sp = node.a("starts"), node.a("ends"), node.a("axes"), None
    else:
        st_known, en_known = ctx.elems(starts), ctx.elems(ends)
        ax = None if axes is None else ctx.elems(axes)
        sp = None if steps is None else ctx.elems(steps)
        if (st_known is None or en_known is None or (axes is not None and ax is None)
                or (steps is not None and sp is None)):
            return ctx.call(_slice_rt, x, starts, ends, axes, steps)
        st, en = st_known, en_known
        if not all(isinstance(v, int) for v in (ax or []) + (sp or [])) or any(
                v < 0 for v in (sp or [])) and not all(isinstance(v, int) for v in st + en):
            return ctx.call(_slice_rt, x, starts, ends, axes, steps)
    r = ctx.rank(x)
    axes_ = list(range(len(st))) if ax is None else [norm_axis(a, r) for a in ax]
    steps_ = sp or [1] * len(st)
    sym = ctx.size_elems(x)
    if (sym is not None and len(axes_) == 1 and steps_[0] != 0 and isinstance(st[0], int)
            and isinstance(en[0], int)):
        s, en_, step = _slice_params(len(sym), st[0], en[0], steps_[0])
        return ctx.sym_tensor(sym[s:en_:step] if step > 0 else [sym[i] for i in range(s, en_, step)])
    shape_ = ctx.static_shape(x)
    idx: list[Any] = [slice(None)] * r
    negatives = []
    for a, s, e, step in zip(axes_, st, en, steps_):
        if step == 0:
            raise NotSupported("slice step 0")
        dim = shape_[a]
        if not (isinstance(s, int) and isinstance(e, int)):
            # Symbolic bounds (x.size(i) from a Shape): Python slicing clamps like ONNX.
            idx[a] = slice(s, e, step)
            continue
        if dim is None:
            if step < 0:
                raise NotSupported("negative-step slice of a dynamic dim")
            big = 2**62
            idx[a] = slice(None if s == 0 else max(min(s, big), -big), None if e >= big else max(e, -big), step)
            continue
        s, e, step = _slice_params(dim, s, e, step)
        if step > 0:
            idx[a] = slice(s, max(e, s), step)
        else:
            negatives.append((a, s, e, step))
    if any(i != slice(None) for i in idx):
        x = ctx.call(_getitem, x, tuple(idx))
    for a, s, e, step in negatives:
        x = ctx.call(_neg_slice, x, a, s, e, step)
    return x


def _slice_rt(x: torch.Tensor, starts: Any, ends: Any, axes: Any, steps: Any) -> torch.Tensor:
    st, en = starts.tolist(), ends.tolist()
    ax = list(range(len(st))) if axes is None else [int(a) % x.dim() for a in axes.tolist()]
    sp = [1] * len(st) if steps is None else steps.tolist()
    for a, s, e, step in zip(ax, st, en, sp):
        s, e, step = slice(int(s), int(e), int(step)).indices(x.shape[a])
        x = x.index_select(a, torch.arange(s, e, step, dtype=torch.int64, device=x.device))
    return x


def _getitem(x: Any, i: Any) -> Any:
    return x[i]


def _expand(x: torch.Tensor, shape_: list[Any]) -> torch.Tensor:
    n = max(x.dim(), len(shape_))
    x = x.reshape([1] * (n - x.dim()) + list(x.shape))
    shape_ = [1] * (n - len(shape_)) + list(shape_)
    dims = [-1 if (isinstance(s, int) and s == 1) else s for s in shape_]
    return x.expand(dims)


@op("Expand")
def expand(ctx: Ctx, node: NodeInfo, x: Value, shape_: Value) -> Value:
    dims = ctx.ints(shape_)
    if dims is None:
        return ctx.call(_expand_rt, x, shape_, _meta=unknown_dims_meta(ctx, shape_, ctx.dtype(x), ctx.rank(x)))
    return ctx.call(_expand, x, dims)


def _expand_rt(x: torch.Tensor, shape_: torch.Tensor) -> torch.Tensor:
    return _expand(x, [int(s) for s in shape_.tolist()])


@op("Tile")
def tile(ctx: Ctx, node: NodeInfo, x: Value, repeats: Value) -> Value:
    reps = ctx.ints(repeats)
    if reps is None:
        return ctx.call(_tile_rt, x, repeats)
    return ctx.call(torch.tile, x, tuple(reps))


def _tile_rt(x: torch.Tensor, reps: torch.Tensor) -> torch.Tensor:
    return torch.tile(x, tuple(int(r) for r in reps.tolist()))
