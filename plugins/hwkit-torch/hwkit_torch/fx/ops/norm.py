"""Normalisations: Batch/Instance/Layer/Group/RMS norm, LRN, LpNormalization, MVN, Dropout."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.ops.shape import norm_axis
from hwkit_torch.fx.registry import NotSupported, op


def _bcast(v: torch.Tensor, r: int) -> torch.Tensor:
    return v.reshape([-1] + [1] * (r - 2))


def _bn_train(x: torch.Tensor, s: torch.Tensor, b: torch.Tensor, mean: torch.Tensor,
              var: torch.Tensor, eps: float, momentum: float) -> Any:
    axes = [0] + list(range(2, x.dim()))
    bm = x.mean(axes)
    bv = x.var(axes, unbiased=False)
    r = x.dim()
    y = _bcast(s, r) * (x - _bcast(bm, r)) / torch.sqrt(_bcast(bv, r) + eps) + _bcast(b, r)
    return y, mean * momentum + bm * (1 - momentum), var * momentum + bv * (1 - momentum)


@op("BatchNormalization")
def batch_norm(ctx: Ctx, node: NodeInfo, x: Value, s: Value, b: Value, mean: Value, var: Value) -> Any:
    eps = node.a("epsilon", 1e-5)
    training = node.a("training_mode", 0) if node.opset >= 14 else (
        node.n_outputs > 1 or (node.opset < 7 and not node.a("is_test", 0)))
    if training:
        y, rm, rv = ctx.call_n(_bn_train, 3, x, s, b, mean, var, eps, node.a("momentum", 0.9))
        return [y, rm, rv][: node.n_outputs]
    return ctx.call(F.batch_norm, x, mean, var, s, b, False, 0.0, eps)


def _instance_norm(x: torch.Tensor, s: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    return F.instance_norm(x, weight=s, bias=b, eps=eps)


@op("InstanceNormalization")
def instance_norm(ctx: Ctx, node: NodeInfo, x: Value, s: Value, b: Value) -> Value:
    return ctx.call(_instance_norm, x, s, b, node.a("epsilon", 1e-5))


def _layer_norm_full(x: torch.Tensor, s: torch.Tensor, b: Any, axis: int, eps: float,
                     stash: bool) -> Any:
    dt = x.dtype
    xf = x.to(torch.float32) if stash and dt in (torch.float16, torch.bfloat16) else x
    dims = list(range(axis, x.dim()))
    mean = xf.mean(dims, keepdim=True)
    d = xf - mean
    inv = torch.rsqrt((d * d).mean(dims, keepdim=True) + eps)
    y = (d * inv).to(dt) * s
    if b is not None:
        y = y + b
    return y, mean, inv


@op("LayerNormalization")
def layer_norm(ctx: Ctx, node: NodeInfo, x: Value, s: Value, b: Value = None) -> Any:
    r = ctx.rank(x)
    axis = norm_axis(node.a("axis", -1), r)
    eps = node.a("epsilon", 1e-5)
    shape = ctx.static_shape(x)[axis:]
    if (node.n_outputs == 1 and None not in shape and ctx.static_shape(s) == shape
            and (b is None or ctx.static_shape(b) == shape)):
        return ctx.call(F.layer_norm, x, shape, s, b, eps)
    outs = ctx.call_n(_layer_norm_full, 3, x, s, b, axis, eps, node.a("stash_type", 1) == 1)
    return outs[: node.n_outputs]


def _rms_norm(x: torch.Tensor, s: torch.Tensor, axis: int, eps: float) -> torch.Tensor:
    dims = list(range(axis, x.dim()))
    return x * torch.rsqrt((x * x).mean(dims, keepdim=True) + eps) * s


@op("RMSNormalization")
def rms_norm(ctx: Ctx, node: NodeInfo, x: Value, s: Value) -> Value:
    r = ctx.rank(x)
    axis = norm_axis(node.a("axis", -1), r)
    eps = node.a("epsilon", 1e-5)
    shape = ctx.static_shape(x)[axis:]
    if None not in shape and ctx.static_shape(s) == shape:
        return ctx.call(F.rms_norm, x, shape, s, eps)
    return ctx.call(_rms_norm, x, s, axis, eps)


def _group_norm(x: torch.Tensor, s: torch.Tensor, b: torch.Tensor, groups: int, eps: float,
                per_group: bool, stash: bool) -> torch.Tensor:
    c = x.shape[1]
    if per_group:
        s = s.repeat_interleave(c // groups)
        b = b.repeat_interleave(c // groups)
    dt = x.dtype
    xf = x.to(torch.float32) if stash and dt in (torch.float16, torch.bfloat16) else x
    y = F.group_norm(xf, groups, None, None, eps).to(dt)
    return y * _bcast(s, x.dim()) + _bcast(b, x.dim())


@op("GroupNormalization")
def group_norm(ctx: Ctx, node: NodeInfo, x: Value, s: Value, b: Value) -> Value:
    return ctx.call(_group_norm, x, s, b, node.a("num_groups"), node.a("epsilon", 1e-5),
                    node.opset < 21, node.a("stash_type", 1) == 1)


@op("LRN")
def lrn(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(F.local_response_norm, x, node.a("size"), node.a("alpha", 1e-4),
                    node.a("beta", 0.75), node.a("bias", 1.0))


def _lp_norm(x: torch.Tensor, axis: int, p: int) -> torch.Tensor:
    n = x.abs().sum(axis, keepdim=True) if p == 1 else torch.sqrt((x * x).sum(axis, keepdim=True))
    return torch.where(n == 0, torch.zeros_like(x), x / n)


@op("LpNormalization")
def lp_norm(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    p = node.a("p", 2)
    if p not in (1, 2):
        raise NotSupported(f"p={p}")
    return ctx.call(_lp_norm, x, norm_axis(node.a("axis", -1), ctx.rank(x)), p)


def _mvn(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    mean = x.mean(axes, keepdim=True)
    var = (x * x).mean(axes, keepdim=True) - mean * mean
    return (x - mean) / (torch.sqrt(var) + 1e-9)


@op("MeanVarianceNormalization")
def mvn(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    r = ctx.rank(x)
    return ctx.call(_mvn, x, [norm_axis(a, r) for a in node.a("axes", [0, 2, 3])])


def _dropout_rt(x: torch.Tensor, ratio: Any, training: Any) -> Any:
    if training is not None and bool(training) and (ratio is None or float(ratio) != 0.0):
        raise RuntimeError("Dropout in training mode with a non-zero ratio is random")
    return x, torch.ones_like(x, dtype=torch.bool)


@op("Dropout")
def dropout(ctx: Ctx, node: NodeInfo, x: Value, ratio: Value = None, training: Value = None) -> Any:
    """Inference semantics; training mode is only accepted with ratio 0 (else it is random)."""
    if training is not None:
        t = ctx.elems(training)
        r = [0.5] if ratio is None else ctx.elems(ratio) if isinstance(ratio, torch.Tensor) else None
        if t is None or r is None:
            # Decided at run time (graph inputs): identity unless training with ratio > 0.
            y, mask = ctx.call_n(_dropout_rt, 2, x, ratio, training)
            return [y, mask][: node.n_outputs]
        if t[0] and r[0] != 0:
            raise NotSupported("Dropout in training mode is random")
    y = x
    if node.n_outputs > 1:
        mask = ctx.call(torch.ones_like, x, dtype=torch.bool)
        return [y, mask]
    return y
