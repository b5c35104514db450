"""Element-wise unary, binary and variadic ops, activations, comparisons, logic."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx import symshape
from hwkit_torch.fx.dtypes import WIDE_UNSIGNED
from hwkit_torch.fx.registry import op


def widened(ctx: Ctx, fn: Any, *xs: Value, **kw: Any) -> Value:
    """Apply ``fn``; uint16/32/64 inputs (few torch kernels) are computed in int64."""
    dts = [ctx.dtype(x) for x in xs
           if isinstance(x, torch.Tensor) or (isinstance(x, fx.Node) and isinstance(x.meta.get("val"), torch.Tensor))]
    if any(d in WIDE_UNSIGNED for d in dts):
        out_dt = dts[0]
        ys = [ctx.cast(x, torch.int64) if x is not None else None for x in xs]
        r = ctx.call(fn, *ys, **kw)
        return ctx.cast(r, out_dt) if ctx.dtype(r) == torch.int64 else r
    return ctx.call(fn, *xs, **kw)


# ------------------------------------------------------------------ unary
_UNARY = {
    "Abs": torch.abs, "Neg": torch.neg, "Exp": torch.exp, "Log": torch.log,
    "Sqrt": torch.sqrt, "Reciprocal": torch.reciprocal, "Ceil": torch.ceil,
    "Floor": torch.floor, "Sign": torch.sign, "Sin": torch.sin, "Cos": torch.cos,
    "Tan": torch.tan, "Asin": torch.asin, "Acos": torch.acos, "Atan": torch.atan,
    "Sinh": torch.sinh, "Cosh": torch.cosh, "Asinh": torch.asinh, "Acosh": torch.acosh,
    "Atanh": torch.atanh, "Tanh": torch.tanh, "Sigmoid": torch.sigmoid, "Relu": torch.relu,
    "Erf": torch.erf, "IsNaN": torch.isnan, "Softsign": F.softsign, "Mish": F.mish,
    "BitwiseNot": torch.bitwise_not, "Not": torch.logical_not,
    "Round": torch.round,  # round-half-to-even, like ONNX
}


def _unary(fn: Any) -> Any:
    def handler(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
        if fn is torch.abs and ctx.dtype(x) in (torch.uint8, *WIDE_UNSIGNED):
            return x  # abs of unsigned is the identity; torch lacks uint16+ kernels
        return widened(ctx, fn, x)

    return handler


for _name, _fn in _UNARY.items():
    op(_name)(_unary(_fn))


@op("Identity")
def identity(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return x


@op("Softplus")
def softplus(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(F.softplus, x)


@op("IsInf")
def isinf(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    pos, neg = node.a("detect_positive", 1), node.a("detect_negative", 1)
    if pos and neg:
        return ctx.call(torch.isinf, x)
    if pos:
        return ctx.call(torch.isposinf, x)
    if neg:
        return ctx.call(torch.isneginf, x)
    return ctx.call(torch.zeros_like, x, dtype=torch.bool)


# ------------------------------------------------------------------ activations
def _elu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


@op("Elu")
def elu(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_elu, x, node.a("alpha", 1.0))


def _selu(x: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


@op("Selu")
def selu(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_selu, x, node.a("alpha", 1.67326319217681884765625),
                    node.a("gamma", 1.05070102214813232421875))


@op("Celu")
def celu(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(F.celu, x, node.a("alpha", 1.0))


@op("LeakyRelu")
def leaky_relu(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(F.leaky_relu, x, node.a("alpha", 0.01))


def _thresholded_relu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.where(x > alpha, x, torch.zeros_like(x))


@op("ThresholdedRelu")
def thresholded_relu(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_thresholded_relu, x, node.a("alpha", 1.0))


def _hard_sigmoid(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    return torch.clamp(alpha * x + beta, 0, 1)


@op("HardSigmoid")
def hard_sigmoid(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_hard_sigmoid, x, node.a("alpha", 0.2), node.a("beta", 0.5))


@op("HardSwish")
def hard_swish(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(F.hardswish, x)


@op("Gelu")
def gelu(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(F.gelu, x, approximate=node.a("approximate", "none"))


def _swish(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return x * torch.sigmoid(alpha * x)


@op("Swish")
def swish(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_swish, x, node.a("alpha", 1.0))


def _shrink(x: torch.Tensor, bias: float, lambd: float) -> torch.Tensor:
    zero = torch.zeros_like(x)
    return torch.where(x < -lambd, x + bias, torch.where(x > lambd, x - bias, zero)).to(x.dtype)


@op("Shrink")
def shrink(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_shrink, x, node.a("bias", 0.0), node.a("lambd", 0.5))


def _prelu(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    return torch.where(x < 0, x * slope, x)


@op("PRelu")
def prelu(ctx: Ctx, node: NodeInfo, x: Value, slope: Value) -> Value:
    return ctx.call(_prelu, x, slope)


def _swiglu(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    return a * torch.sigmoid(alpha * a) * b


@op("SwiGLU")
def swiglu(ctx: Ctx, node: NodeInfo, a: Value, b: Value) -> Value:
    return ctx.call(_swiglu, a, b, node.a("alpha", 1.0))


# ------------------------------------------------------------------ binary
def _int_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.div(a, b, rounding_mode="trunc")


@op("Add")
def add(ctx: Ctx, node: NodeInfo, a: Value, b: Value) -> Value:
    return _sym_binary(ctx, operator.add, a, b) or widened(ctx, torch.add, a, b)


@op("Sub")
def sub(ctx: Ctx, node: NodeInfo, a: Value, b: Value) -> Value:
    return _sym_binary(ctx, operator.sub, a, b) or widened(ctx, torch.sub, a, b)


@op("Mul")
def mul(ctx: Ctx, node: NodeInfo, a: Value, b: Value) -> Value:
    if ctx.dtype(a) == torch.bool:
        return ctx.call(torch.logical_and, a, b)
    return _sym_binary(ctx, operator.mul, a, b) or widened(ctx, torch.mul, a, b)


@op("Div")
def div(ctx: Ctx, node: NodeInfo, a: Value, b: Value) -> Value:
    dt = ctx.dtype(a)
    if dt.is_floating_point:
        return ctx.call(torch.div, a, b)
    return _sym_binary(ctx, operator.floordiv, a, b) or widened(ctx, _int_div, a, b)


def _pow(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype.is_floating_point:
        return torch.pow(a, b.to(a.dtype))
    if b.dtype.is_floating_point:
        return torch.pow(a.to(b.dtype), b).to(a.dtype)
    return torch.pow(a, b.to(a.dtype))


# Constant exponents computed exactly as onnxruntime and OpenVINO do (x·x, x·x·x; x^1 = x and
# x^0 = 1, NaN included, as C's pow): torch.pow with a tensor exponent is 1 ulp off in some
# elements. Other exponents keep torch.pow: those runtimes use their own pow there as well.
def _square(x: torch.Tensor) -> torch.Tensor:
    return x * x


def _cube(x: torch.Tensor) -> torch.Tensor:
    return x * x * x


_EXACT_POW: dict[int, Any] = {0: torch.ones_like, 1: torch.clone, 2: _square, 3: _cube}


def _constant_exponent(ctx: Ctx, a: Value, b: Value) -> int | None:
    """``b``'s value when it is a one-element constant with one of the values of ``_EXACT_POW``
    that leaves ``a``'s shape as it is (a float ``a``); else None."""
    if not (ctx.is_const(b) and isinstance(b, torch.Tensor) and b.numel() == 1) or not ctx.dtype(a).is_floating_point:
        return None
    if b.dim() > ctx.rank(a):  # broadcasting would add axes: the general path handles that
        return None
    value = float(b.reshape(()).item())
    return int(value) if value.is_integer() and int(value) in _EXACT_POW else None


@op("Pow")
def pow_(ctx: Ctx, node: NodeInfo, a: Value, b: Value) -> Value:
    exponent = _constant_exponent(ctx, a, b)
    if exponent is not None:
        return ctx.call(_EXACT_POW[exponent], a)
    return widened(ctx, _pow, a, b)


@op("Mod")
def mod(ctx: Ctx, node: NodeInfo, a: Value, b: Value) -> Value:
    if node.a("fmod", 0):
        return widened(ctx, torch.fmod, a, b)
    return widened(ctx, torch.remainder, a, b)


_BINARY = {
    "And": torch.logical_and, "Or": torch.logical_or, "Xor": torch.logical_xor,
    "Equal": torch.eq, "Less": torch.lt, "Greater": torch.gt, "LessOrEqual": torch.le,
    "GreaterOrEqual": torch.ge, "BitwiseAnd": torch.bitwise_and,
    "BitwiseOr": torch.bitwise_or, "BitwiseXor": torch.bitwise_xor,
}


def _binary(fn: Any) -> Any:
    def handler(ctx: Ctx, node: NodeInfo, a: Value, b: Value) -> Value:
        known = symshape.compare(ctx, node.op_type, a, b)
        return known if known is not None else widened(ctx, fn, a, b)

    return handler


for _name, _fn in _BINARY.items():
    op(_name)(_binary(_fn))


def _bitshift(a: torch.Tensor, b: torch.Tensor, right: bool, bits: int) -> torch.Tensor:
    out_of_range = (b < 0) | (b >= bits)
    bb = torch.where(out_of_range, torch.zeros_like(b), b)
    r = torch.bitwise_right_shift(a, bb) if right else torch.bitwise_left_shift(a, bb)
    fill = torch.zeros_like(r)
    if right and a.dtype.is_signed:
        fill = torch.where(a < 0, -torch.ones_like(r), fill)  # arithmetic shift saturates to -1
    return torch.where(out_of_range, fill, r)


@op("BitShift")
def bitshift(ctx: Ctx, node: NodeInfo, a: Value, b: Value) -> Value:
    dt = ctx.dtype(a)
    bits = torch.iinfo(dt).bits
    right = node.a("direction") == "RIGHT"
    if dt in WIDE_UNSIGNED:
        # Unsigned semantics in int64: mask the left shift to the type's width.
        a64, b64 = ctx.cast(a, torch.int64), ctx.cast(b, torch.int64)
        r = ctx.call(_bitshift, a64, b64, right, bits)
        if bits < 64:
            r = ctx.call(torch.bitwise_and, r, (1 << bits) - 1)
        return ctx.cast(r, dt)
    return ctx.call(_bitshift, a, b, right, bits)


# ------------------------------------------------------------------ variadic
def _variadic(fn: Any, mean: bool = False) -> Any:
    def handler(ctx: Ctx, node: NodeInfo, *xs: Value) -> Value:
        xs = tuple(x for x in xs if x is not None)
        acc = xs[0]
        for x in xs[1:]:
            acc = widened(ctx, fn, acc, x)
        if mean:
            acc = ctx.call(torch.div, acc, len(xs))
        if len(xs) == 1:
            acc = ctx.call(torch.clone, acc)
        return acc

    return handler


op("Max")(_variadic(torch.maximum))
op("Min")(_variadic(torch.minimum))
op("Sum")(_variadic(torch.add))
op("Mean")(_variadic(torch.add, mean=True))


@op("Where")
def where(ctx: Ctx, node: NodeInfo, c: Value, a: Value, b: Value) -> Value:
    known = symshape.where(ctx, c, a, b)
    return known if known is not None else widened(ctx, _where, a, b, c)


def _where(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return torch.where(c, a, b)


def _clip(x: torch.Tensor, lo: Any, hi: Any) -> torch.Tensor:
    if lo is not None:
        x = torch.maximum(x, lo.to(x.dtype) if isinstance(lo, torch.Tensor) else torch.tensor(lo, dtype=x.dtype, device=x.device))
    if hi is not None:
        x = torch.minimum(x, hi.to(x.dtype) if isinstance(hi, torch.Tensor) else torch.tensor(hi, dtype=x.dtype, device=x.device))
    return x


@op("Clip", since=11)
def clip(ctx: Ctx, node: NodeInfo, x: Value, lo: Value = None, hi: Value = None) -> Value:
    return widened(ctx, _clip, x, lo, hi)


@op("Clip", until=10)
def clip_v6(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_clip, x, node.a("min", -3.4028234663852886e38), node.a("max", 3.4028234663852886e38))


# ------------------------------------------------------------------ symbolic shape arithmetic
def _sym_binary(ctx: Ctx, fn: Any, a: Value, b: Value) -> Value | None:
    """Element-wise int arithmetic on shape values known symbolically (keeps dims dynamic)."""
    if not (isinstance(a, fx.Node) and a in ctx.sym_elems) and not (
        isinstance(b, fx.Node) and b in ctx.sym_elems
    ):
        return None
    ea, eb = ctx.elems(a), ctx.elems(b)
    if ea is None or eb is None:
        return None
    scalar = ctx.rank(a) == 0 and ctx.rank(b) == 0
    if len(ea) != len(eb):
        if len(ea) == 1:
            ea = ea * len(eb)
        elif len(eb) == 1:
            eb = eb * len(ea)
        else:
            return None
    out = []
    for x, y in zip(ea, eb):
        if isinstance(x, int) and isinstance(y, int):
            out.append(int(fn(x, y)) if fn is not operator.floordiv else int(x / y))
        else:
            out.append(ctx.call(fn, x, y))
    return ctx.sym_tensor(out, scalar=scalar)


