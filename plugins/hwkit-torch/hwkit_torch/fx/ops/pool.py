"""Pooling: MaxPool, AveragePool, LpPool, Global*Pool, MaxUnpool.

Common cases map to torch's pooling kernels. Anything torch cannot express exactly
(asymmetric or large pads, ceil_mode, dilated average pooling) uses a generic unfold-based
implementation that follows the ONNX reference semantics.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.ops.conv import same_pads, torch_pad_list
from hwkit_torch.fx.registry import NotSupported, op

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _geometry(ctx: Ctx, node: NodeInfo, x: Value) -> tuple[list[int], ...]:
    k = list(node.a("kernel_shape"))
    n = len(k)
    s = list(node.a("strides") or [1] * n)
    d = list(node.a("dilations") or [1] * n)
    auto = node.a("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        p = same_pads(ctx.static_shape(x)[2:], k, s, d, auto)
    elif auto == "VALID":
        p = [0] * (2 * n)
    else:
        p = list(node.a("pads") or [0] * (2 * n))
    return k, s, d, p


def _out_and_extra(ins: list[int], k: list[int], s: list[int], d: list[int], p: list[int],
                   ceil: bool) -> tuple[list[int], list[int]]:
    n = len(ins)
    outs, extra = [], []
    for i in range(n):
        span = d[i] * (k[i] - 1) + 1
        size = (ins[i] + p[i] + p[n + i] - span) / s[i] + 1
        o = math.ceil(size) if ceil else math.floor(size)
        if ceil and (o - 1) * s[i] >= ins[i] + p[i]:
            o -= 1
        outs.append(o)
        extra.append(max((o - 1) * s[i] + span - ins[i] - p[i] - p[n + i], 0))
    return outs, extra


def _generic_pool(x: torch.Tensor, k: list[int], s: list[int], d: list[int], p: list[int],
                  ceil: bool, kind: str, include_pad: bool, pw: float) -> torch.Tensor:
    n = len(k)
    dt = x.dtype
    xf = x.to(torch.float64) if not dt.is_floating_point else x
    outs, extra = _out_and_extra(list(x.shape[2:]), k, s, d, p, ceil)
    pad_val = 0.0 if (kind != "max" and include_pad) else math.nan
    if kind == "max" and not dt.is_floating_point:
        pad_val = math.nan
    xf = F.pad(xf, torch_pad_list(p), value=pad_val)
    # The reference splits the ceil-mode extra padding over both ends; it never counts.
    ex_b = [e // 2 for e in extra]
    ex_e = [e - e // 2 for e in extra]
    xf = F.pad(xf, torch_pad_list(ex_b + ex_e), value=math.nan)
    for i in range(n):
        span = d[i] * (k[i] - 1) + 1
        xf = xf.unfold(2 + i, span, s[i])
        xf = xf.narrow(2 + i, 0, outs[i])
    # dims: [N, C, o1..on, span1..spann] -> take dilated taps
    idx = tuple([slice(None)] * (2 + n) + [slice(None, None, d[i]) for i in range(n)])
    w = xf[idx].reshape(list(xf.shape[: 2 + n]) + [-1])
    valid = ~torch.isnan(w)
    if kind == "max":
        y = torch.where(valid, w, torch.full_like(w, -math.inf)).amax(-1)
    elif kind == "avg":
        y = torch.nansum(w, -1) / valid.sum(-1)
    else:
        y = torch.nansum(torch.abs(w) ** pw, -1) ** (1.0 / pw)
    return y.to(dt)


def _fast_ok(k: list[int], p: list[int], d: list[int], ceil: bool, avg: bool) -> bool:
    n = len(k)
    return (p[:n] == p[n:] and all(p[i] <= k[i] // 2 for i in range(n)) and not ceil
            and (not avg or all(v == 1 for v in d)) and n in _MAX)


def _maxpool_indices(x: torch.Tensor, k: list[int], s: list[int], p: list[int], d: list[int],
                     col_major: bool) -> Any:
    n = len(k)
    y, idx = _MAX[n](x, k, s, p[:n], d, False, True)
    spatial = list(x.shape[2:])
    plane = math.prod(spatial)
    if col_major:
        if n != 2:
            raise NotImplementedError("storage_order=1 needs 2-D pooling")
        h, w = spatial
        idx = (idx % w) * h + idx // w
    nc = torch.arange(x.shape[0] * x.shape[1], dtype=torch.int64, device=x.device).reshape(
        [x.shape[0], x.shape[1]] + [1] * n)
    return y, idx + nc * plane


@op("MaxPool")
def max_pool(ctx: Ctx, node: NodeInfo, x: Value) -> Any:
    k, s, d, p = _geometry(ctx, node, x)
    ceil = bool(node.a("ceil_mode", 0))
    n = len(k)
    want_idx = node.n_outputs > 1 and node.outputs[1] != ""
    dt = ctx.dtype(x)
    if want_idx:
        if not _fast_ok(k, p, d, ceil, False):
            raise NotSupported("MaxPool Indices with asymmetric pads or ceil_mode")
        return ctx.call_n(_maxpool_indices, 2, x, k, s, p, d, bool(node.a("storage_order", 0)))
    if _fast_ok(k, p, d, ceil, False) and dt.is_floating_point:
        return ctx.call(_MAX[n], x, k, s, p[:n], d, False)
    return ctx.call(_generic_pool, x, k, s, d, p, ceil, "max", False, 1.0)


@op("AveragePool")
def average_pool(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    k, s, d, p = _geometry(ctx, node, x)
    ceil = bool(node.a("ceil_mode", 0))
    include = bool(node.a("count_include_pad", 0))
    n = len(k)
    if _fast_ok(k, p, d, ceil, True):
        return ctx.call(_AVG[n], x, k, s, p[:n], False, include)
    return ctx.call(_generic_pool, x, k, s, d, p, ceil, "avg", include, 1.0)


@op("LpPool")
def lp_pool(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    k, s, d, p = _geometry(ctx, node, x)
    return ctx.call(_generic_pool, x, k, s, d, p, bool(node.a("ceil_mode", 0)), "lp",
                    True, float(node.a("p", 2)))


def _global(x: torch.Tensor, kind: str, p: float) -> torch.Tensor:
    dims = list(range(2, x.dim()))
    if kind == "max":
        return x.amax(dims, keepdim=True)
    if kind == "avg":
        return x.mean(dims, keepdim=True)
    return (x.abs() ** p).sum(dims, keepdim=True) ** (1.0 / p)


@op("GlobalMaxPool")
def global_max_pool(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_global, x, "max", 1.0)


@op("GlobalAveragePool")
def global_avg_pool(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_global, x, "avg", 1.0)


@op("GlobalLpPool")
def global_lp_pool(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_global, x, "lp", float(node.a("p", 2)))


def _max_unpool(x: torch.Tensor, idx: torch.Tensor, out_shape: Any, k: list[int],
                s: list[int], p: list[int]) -> torch.Tensor:
    n = len(k)
    inferred = list(x.shape[:2]) + [
        (x.shape[2 + i] - 1) * s[i] + k[i] - p[i] - p[n + i] for i in range(n)]
    out = torch.zeros(math.prod(inferred), dtype=x.dtype, device=x.device)
    out[idx.reshape(-1)] = x.reshape(-1)
    y = out.reshape(inferred)
    if out_shape is None:
        return y
    # The reference scatters into the inferred shape, then pads it to output_shape.
    shape = [int(v) for v in out_shape.tolist()]
    res = torch.zeros(shape, dtype=x.dtype, device=x.device)
    res[tuple(slice(0, d) for d in inferred)] = y
    return res


@op("MaxUnpool")
def max_unpool(ctx: Ctx, node: NodeInfo, x: Value, idx: Value, out_shape: Value = None) -> Value:
    k = list(node.a("kernel_shape"))
    n = len(k)
    return ctx.call(_max_unpool, x, idx, out_shape, k, list(node.a("strides") or [1] * n),
                    list(node.a("pads") or [0] * 2 * n))
