"""Quantisation: (Dynamic)QuantizeLinear, DequantizeLinear, QLinearMatMul, QLinearConv."""

from __future__ import annotations

from typing import Any

import torch

from hwkit_torch.fx import dtypes
from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.ops.cast import cast_tensor, round_float4
from hwkit_torch.fx.ops.conv import conv_geometry, conv_padded
from hwkit_torch.fx.registry import NotSupported, op


def _expand_param(p: torch.Tensor, shape: Any, axis: int, block: int) -> torch.Tensor:
    """Scale/zero point broadcastable to ``shape`` (per-tensor, per-axis or blocked)."""
    r = len(shape)
    if p.dim() == 0 or p.numel() == 1 and p.dim() <= 1:
        return p.reshape(())
    axis = axis % r
    if block:
        p = p.repeat_interleave(block, dim=axis).narrow(axis, 0, shape[axis])
        return p
    s = [1] * r
    s[axis] = -1
    return p.reshape(s)


def _quantize(x: torch.Tensor, scale: torch.Tensor, zp: Any, axis: int, block: int,
              out_dt: torch.dtype, saturate: bool, onnx_type: Any) -> torch.Tensor:
    s = _expand_param(scale, x.shape, axis, block)
    y = x.to(torch.float32) / s.to(torch.float32) if x.dtype != torch.float64 else x / s
    if out_dt in dtypes.FLOAT8:
        return cast_tensor(y, out_dt, saturate)
    if onnx_type == dtypes.TP.FLOAT4E2M1:
        if zp is not None:
            y = y + _expand_param(zp, x.shape, axis, block).to(y.dtype)
        return round_float4(y)
    y = torch.round(y)
    if zp is not None:
        y = y + _expand_param(zp, x.shape, axis, block).to(y.dtype)
    lo, hi = dtypes.SUBBYTE_RANGE.get(onnx_type) or (torch.iinfo(out_dt).min, torch.iinfo(out_dt).max)
    return y.clamp(lo, hi).to(torch.int64).to(out_dt)


def _out_dtype(ctx: Ctx, node: NodeInfo, zp: Value) -> torch.dtype:
    if zp is not None:
        return ctx.dtype(zp)
    od = node.a("output_dtype")
    if od:
        if od not in dtypes.ONNX_TO_TORCH:
            raise NotSupported(f"output_dtype {dtypes.name(od)}")
        return dtypes.to_torch(od)
    return torch.uint8


@op("QuantizeLinear")
def quantize_linear(ctx: Ctx, node: NodeInfo, x: Value, scale: Value, zp: Value = None) -> Value:
    dt = _out_dtype(ctx, node, zp)
    onnx_type = node.output_types[0] if node.output_types else None
    if zp is not None and len(node.input_types) > 2 and node.input_types[2]:
        onnx_type = node.input_types[2]
    return ctx.call(_quantize, x, scale, zp, node.a("axis", 1), node.a("block_size", 0), dt,
                    bool(node.a("saturate", 1)), onnx_type)


def _dequantize(x: torch.Tensor, scale: torch.Tensor, zp: Any, axis: int, block: int,
                out_dt: torch.dtype) -> torch.Tensor:
    s = _expand_param(scale, x.shape, axis, block)
    wide = torch.float64 if out_dt == torch.float64 else torch.float32
    xf = x.to(wide) if x.dtype not in dtypes.FLOAT8 else x.to(torch.float32).to(wide)
    if zp is not None and zp.dtype not in dtypes.FLOAT8:
        xf = xf - _expand_param(zp, x.shape, axis, block).to(wide)
    return (xf * s.to(wide)).to(out_dt)


@op("DequantizeLinear")
def dequantize_linear(ctx: Ctx, node: NodeInfo, x: Value, scale: Value, zp: Value = None) -> Value:
    od = node.a("output_dtype")
    dt = dtypes.ONNX_TO_TORCH.get(od) if od else ctx.dtype(scale)
    if dt is None:
        raise NotSupported(f"output_dtype {od}")
    return ctx.call(_dequantize, x, scale, zp, node.a("axis", 1), node.a("block_size", 0), dt)


def _dynamic_quantize(x: torch.Tensor) -> Any:
    lo = torch.clamp(x.min(), max=0.0)
    hi = torch.clamp(x.max(), min=0.0)
    scale = (hi - lo) / 255.0
    zp = torch.clamp(torch.round(-lo / scale), 0, 255)
    y = torch.clamp(torch.round(x / scale) + zp, 0, 255)
    return y.to(torch.uint8), scale.to(x.dtype), zp.to(torch.uint8)


@op("DynamicQuantizeLinear")
def dynamic_quantize_linear(ctx: Ctx, node: NodeInfo, x: Value) -> Any:
    return ctx.call_n(_dynamic_quantize, 3, x)


def _deq(x: torch.Tensor, s: torch.Tensor, zp: torch.Tensor, axis: int) -> torch.Tensor:
    xf = x.to(torch.float64)
    if s.numel() > 1:
        shape = [1] * x.dim()
        shape[axis % x.dim()] = -1
        s, zp = s.reshape(shape), zp.reshape(shape)
    return (xf - zp.to(torch.float64)) * s.to(torch.float64)


def _qlinear_matmul(a: torch.Tensor, sa: torch.Tensor, za: torch.Tensor, b: torch.Tensor,
                    sb: torch.Tensor, zb: torch.Tensor, sy: torch.Tensor, zy: torch.Tensor) -> torch.Tensor:
    af = (a.to(torch.float64) - za.to(torch.float64).reshape(-1, 1) if za.numel() > 1
          else a.to(torch.float64) - za.to(torch.float64))
    bf = b.to(torch.float64) - zb.to(torch.float64)
    sa64 = sa.to(torch.float64).reshape(-1, 1) if sa.numel() > 1 else sa.to(torch.float64)
    y = (af * sa64) @ (bf * sb.to(torch.float64))
    y = torch.round(y / sy.to(torch.float64)) + zy.to(torch.float64)
    info = torch.iinfo(zy.dtype)
    return y.clamp(info.min, info.max).to(zy.dtype)


@op("QLinearMatMul")
def qlinear_matmul(ctx: Ctx, node: NodeInfo, a: Value, sa: Value, za: Value, b: Value, sb: Value,
                   zb: Value, sy: Value, zy: Value) -> Value:
    return ctx.call(_qlinear_matmul, a, sa, za, b, sb, zb, sy, zy)


def _qlinear_conv(x: torch.Tensor, sx: torch.Tensor, zx: torch.Tensor, w: torch.Tensor,
                  sw: torch.Tensor, zw: torch.Tensor, sy: torch.Tensor, zy: torch.Tensor, b: Any,
                  strides: list[int], pads: list[int], dil: list[int], group: int) -> torch.Tensor:
    xf = _deq(x, sx, zx, 1)
    wf = _deq(w, sw, zw, 0)
    bf = None if b is None else b.to(torch.float64) * (sx.to(torch.float64) * sw.to(torch.float64)).reshape(-1)
    y = conv_padded(xf, wf, bf, strides, pads, dil, group)
    y = torch.round(y / sy.to(torch.float64)) + zy.to(torch.float64)
    info = torch.iinfo(zy.dtype)
    return y.clamp(info.min, info.max).to(zy.dtype)


@op("QLinearConv")
def qlinear_conv(ctx: Ctx, node: NodeInfo, x: Value, sx: Value, zx: Value, w: Value, sw: Value,
                 zw: Value, sy: Value, zy: Value, b: Value = None) -> Value:
    kshape = node.a("kernel_shape") or ctx.static_shape(w)[2:]
    strides, dil, pads = conv_geometry(ctx, node, x, kshape)
    return ctx.call(_qlinear_conv, x, sx, zx, w, sw, zw, sy, zy, b, strides, pads, dil,
                    node.a("group", 1))
