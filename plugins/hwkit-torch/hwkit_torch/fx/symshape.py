"""Shape arithmetic decided at conversion time on values known element by element.

Exporters build shapes with comparisons and selections, e.g. ``Where(Equal(shape, -1), 1,
shape)`` before an Expand. When ``shape`` holds sizes (``Ctx.sym_elems``), these helpers decide
each element from what the shape environment knows for every size (a size is never -1), without
fixing a dynamic dimension, so the consumer still sees the sizes and the graph stays free of
data-dependent shapes (which ``torch.compile`` cannot trace). Each helper returns None when it
cannot decide; the handler then emits the ordinary run-time op.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx as fx
from torch.fx.experimental.symbolic_shapes import statically_known_true

from hwkit_torch.fx.context import Ctx, Value

COMPARISONS = {"Equal": operator.eq, "Less": operator.lt, "Greater": operator.gt,
               "LessOrEqual": operator.le, "GreaterOrEqual": operator.ge}


def _known(ctx: Ctx, v: Value) -> list[Any] | None:
    """Elements of ``v`` when at least one side of the op is a tracked shape value."""
    if isinstance(v, fx.Node) and v in ctx.sym_elems or isinstance(v, torch.Tensor):
        return ctx.elems(v)
    return None


def _pair(ctx: Ctx, a: Value, b: Value) -> tuple[list[Any], list[Any]] | None:
    if not any(isinstance(v, fx.Node) and v in ctx.sym_elems for v in (a, b)):
        return None
    ea, eb = _known(ctx, a), _known(ctx, b)
    if ea is None or eb is None:
        return None
    if len(ea) != len(eb):
        if len(ea) == 1:
            ea = ea * len(eb)
        elif len(eb) == 1:
            eb = eb * len(ea)
        else:
            return None
    return ea, eb


def _sym(e: Any) -> Any:
    return e.meta.get("val") if isinstance(e, fx.Node) else e


def compare(ctx: Ctx, op_type: str, a: Value, b: Value) -> Value | None:
    """A constant bool tensor when every element comparison is statically known."""
    fn = COMPARISONS.get(op_type)
    if fn is None:
        return None
    pair = _pair(ctx, a, b)
    if pair is None:
        return None
    out = []
    for x, y in zip(*pair):
        sx, sy = _sym(x), _sym(y)
        if not isinstance(sx, (int, torch.SymInt)) or not isinstance(sy, (int, torch.SymInt)):
            return None
        if statically_known_true(fn(sx, sy)):
            out.append(True)
        elif statically_known_true(operator.not_(fn(sx, sy))):
            out.append(False)
        else:
            return None
    scalar = ctx.rank(a) == 0 and ctx.rank(b) == 0
    t = torch.tensor(out, dtype=torch.bool)
    return t.reshape(()) if scalar else t


def where(ctx: Ctx, c: Value, a: Value, b: Value) -> Value | None:
    """Element-wise selection between shape values under a condition known now."""
    if not isinstance(c, torch.Tensor) or c.dim() > 1 or c.dtype != torch.bool:
        return None
    pair = _pair(ctx, a, b)
    if pair is None:
        return None
    ea, eb = pair
    cond = c.reshape(-1).tolist()
    if len(cond) == 1:
        cond = cond * len(ea)
    if len(cond) != len(ea):
        return None
    scalar = c.dim() == 0 and ctx.rank(a) == 0 and ctx.rank(b) == 0
    return ctx.sym_tensor([x if k else y for k, x, y in zip(cond, ea, eb)], scalar=scalar)


def flat(ctx: Ctx, x: Value, dims: list[Any]) -> Value | None:
    """Reshape of a shape value to 1-D (``[-1]`` or ``[n]``) or 0-D: the same elements."""
    e = ctx.size_elems(x)
    if e is None or not all(isinstance(d, int) for d in dims):
        return None
    if dims in ([-1], [len(e)]):
        return ctx.sym_tensor(e)
    if dims == [] and len(e) == 1:
        return ctx.sym_tensor(e, scalar=True)
    return None
