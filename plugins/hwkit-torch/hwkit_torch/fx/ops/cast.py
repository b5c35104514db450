"""Cast, CastLike, BitCast."""

from __future__ import annotations

import torch
import torch.fx as fx

from hwkit_torch.fx import dtypes
from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.registry import NotSupported, op

_F8_NAN_ON_OVERFLOW = {torch.float8_e4m3fn, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz}


def to_e8m0(x: torch.Tensor, saturate: bool, mode: str = "up") -> torch.Tensor:
    """FLOAT8E8M0 (a bare power-of-two exponent) with ONNX's rounding modes, via float32 bits."""
    bits = x.to(torch.float32).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    exp = (bits >> 23) & 0xFF
    special = exp == 0xFF
    if mode == "up":
        up = (bits & 0x7FFFFF) > 0
    elif mode == "nearest":
        g, r, st = (bits & 0x400000) > 0, (bits & 0x200000) > 0, (bits & 0x1FFFFF) > 0
        up = g & (r | st | (exp > 0))
    else:
        up = torch.zeros_like(special)
    up = up & ~special
    if saturate:
        up = up & (exp != 0xFE)
    exp = torch.where(special, torch.full_like(exp, 0xFF), (exp + up.to(exp.dtype)) & 0xFF)
    return exp.to(torch.uint8).view(torch.float8_e8m0fnu)


def cast_tensor(x: torch.Tensor, dt: torch.dtype, saturate: bool, round_mode: str = "up") -> torch.Tensor:
    if dt == torch.float8_e8m0fnu and x.dtype != dt:
        return to_e8m0(x if x.dtype not in dtypes.FLOAT8 else x.to(torch.float32), saturate, round_mode)
    if dt in dtypes.FLOAT8 and dt != torch.float8_e8m0fnu:
        xf = x.to(torch.float32) if x.dtype != torch.float64 else x
        mx = torch.finfo(dt).max
        if saturate:
            y = torch.clamp(xf, -mx, mx)  # +-inf -> +-max, NaN stays NaN
            return y.to(dt)
        y = xf.to(dt)
        # torch saturates; ONNX saturate=0 wants NaN (or inf for e5m2) on overflow.
        over = xf.abs() > mx * (1 + 2.0 ** -(4 if dt in (torch.float8_e4m3fn, torch.float8_e4m3fnuz) else 3))
        over = over | torch.isinf(xf)
        if dt in _F8_NAN_ON_OVERFLOW:
            bad = torch.full_like(xf, float("nan"))
        else:
            bad = torch.where(xf > 0, float("inf"), float("-inf")).to(xf.dtype)
        return torch.where(over, bad, xf).to(dt)
    if x.dtype in dtypes.FLOAT8 and dt not in (torch.float32, torch.float64):
        x = x.to(torch.float32)
    if x.dtype in dtypes.WIDE_UNSIGNED and dt not in dtypes.WIDE_UNSIGNED and dt != torch.int64:
        x = x.to(torch.int64)
    if dt in dtypes.WIDE_UNSIGNED and x.dtype not in (torch.int64, torch.int32, *dtypes.WIDE_UNSIGNED):
        if x.dtype.is_floating_point:
            x = x.to(torch.float64).to(torch.int64)
        else:
            x = x.to(torch.int64)
    if x.dtype.is_floating_point and not dt.is_floating_point and dt != torch.bool:
        # C-style truncation; NaN/inf are undefined in ONNX, torch gives min-int.
        return x.to(dt)
    return x.to(dt)


def _target(node: NodeInfo) -> torch.dtype:
    to = node.a("to")
    if to not in dtypes.ONNX_TO_TORCH:
        raise NotSupported(f"cast to {dtypes.name(to)}")
    return dtypes.to_torch(to)


_F4_GRID = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


def round_float4(x: torch.Tensor) -> torch.Tensor:
    """Round to FLOAT4E2M1 values (nearest, ties to even mantissa, saturating at 6)."""
    xf = x.to(torch.float32)
    a = xf.abs().clamp(max=6.0)
    grid = torch.tensor(_F4_GRID, device=x.device)
    hi_i = torch.bucketize(a, grid).clamp(max=7)
    lo_i = (hi_i - 1).clamp(min=0)
    lo, hi = grid[lo_i], grid[hi_i]
    d_lo, d_hi = a - lo, hi - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi_i % 2 == 0))
    y = torch.where(pick_hi, hi, lo)
    y = torch.where(a == grid[hi_i], grid[hi_i], y)
    return torch.where(torch.isnan(xf), xf, torch.copysign(y, xf))


def wrap_int(x: torch.Tensor, lo: int, hi: int, dt: torch.dtype) -> torch.Tensor:
    """Integer conversion into a sub-byte type: truncate, then wrap modulo 2**bits."""
    v = x.to(torch.float64).trunc().to(torch.int64) if x.dtype.is_floating_point else x.to(torch.int64)
    span = hi - lo + 1
    return ((v - lo) % span + lo).to(dt)


def _cast_onnx(x: torch.Tensor, to: int, saturate: bool) -> torch.Tensor:
    if to == dtypes.TP.FLOAT4E2M1:
        return round_float4(x)
    if to in dtypes.SUBBYTE_RANGE:
        lo, hi = dtypes.SUBBYTE_RANGE[to]
        return wrap_int(x, lo, hi, dtypes.SUBBYTE[to])
    return cast_tensor(x, dtypes.to_torch(to), saturate)


@op("Cast")
def cast(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    dt = _target(node)
    if node.a("to") in dtypes.SUBBYTE:
        return ctx.call(_cast_onnx, x, node.a("to"), True)
    if isinstance(x, fx.Node) and x in ctx.sym_elems and not dt.is_floating_point and dt != torch.bool:
        return x  # a symbolic shape value cast between int types keeps its elements
    if ctx.dtype(x) == dt:
        return x
    return ctx.call(cast_tensor, x, dt, bool(node.a("saturate", 1)), node.a("round_mode", "up"))


@op("CastLike")
def cast_like(ctx: Ctx, node: NodeInfo, x: Value, like: Value) -> Value:
    to = node.input_types[1] if len(node.input_types) > 1 else None
    if to in dtypes.SUBBYTE:
        return ctx.call(_cast_onnx, x, to, True)
    dt = ctx.dtype(like)
    if ctx.dtype(x) == dt:
        return x
    return ctx.call(cast_tensor, x, dt, bool(node.a("saturate", 1)))


def _bitcast(x: torch.Tensor, dt: torch.dtype) -> torch.Tensor:
    return x.contiguous().view(dt)


@op("BitCast")
def bitcast(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    dt = _target(node)
    if ctx.dtype(x).itemsize != dt.itemsize:
        raise NotSupported("BitCast between types of different sizes")
    return ctx.call(_bitcast, x, dt)
