"""Exported decompositions rewritten into torch's fused ops, for eager and compiled runs alike.

Exporters spell attention, Gelu and the norms as chains of elementary ops; torch has one fused
kernel for each. On the converted graph (after ``fuse_linear``):

- attention ``MatMul(q, kᵀ) → (scale) → (+ mask) → Softmax(last axis) → MatMul(·, v)``, scales
  on ``q`` and ``kᵀ`` included, becomes ``F.scaled_dot_product_attention`` (with the NaN guard
  of fully masked rows kept, on its output);
- Gelu ``x · 0.5 · (1 + erf(x / √2))`` becomes ``F.gelu``;
- RMSNorm ``x / √(mean(x²) + ε)`` becomes ``F.rms_norm`` and LayerNorm
  ``(x − mean) / √(var + ε)`` becomes ``F.layer_norm`` (their scale and shift stay as they are).

Each rewrite checks that it is exact up to float rounding: the constants have the expected
values, intermediate results have no other users, and reductions run over the last axis only.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from hwkit_torch.fx.ops.elementwise import _square, _where
from hwkit_torch.fx.ops.math import _softmax_nd
from hwkit_torch.fx.ops.reduce import _reduce

_MATMUL = {torch.matmul, operator.matmul}
_MUL = {torch.mul, operator.mul}
_DIV = {torch.div, operator.truediv}
_ADD = {torch.add, operator.add}
_SUB = {torch.sub, operator.sub}
_FLOATS = {torch.float32, torch.float16, torch.bfloat16, torch.float64}


def fuse_patterns(gm: fx.GraphModule) -> dict[str, int]:
    """Apply every rewrite to ``gm``; how many of each fired."""
    counts = {"attention": 0, "gelu": 0, "rms_norm": 0, "layer_norm": 0}
    for node in list(gm.graph.nodes):
        if node.graph is not gm.graph or node.op != "call_function":
            continue  # erased by an earlier rewrite
        for name, rewrite in _REWRITES:
            if rewrite(gm, node):
                counts[name] += 1
                break
    if any(counts.values()):
        gm.graph.eliminate_dead_code()
        gm.graph.lint()
        gm.recompile()
    return counts


# ------------------------------------------------------------------ matching helpers
def _call(v: Any, targets: set[Any] | Callable[..., Any]) -> bool:
    if not isinstance(v, fx.Node) or v.op != "call_function":
        return False
    return v.target in targets if isinstance(targets, set) else v.target is targets


def _only_user(v: Any, user: Any) -> bool:
    return len(v.users) == 1 and user in v.users


def _scalar(gm: fx.GraphModule, v: Any) -> float | None:
    """The value of a one-element float constant (a buffer or a Python number)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, fx.Node) and v.op == "get_attr" and isinstance(v.target, str):
        t = getattr(gm, v.target, None)
        if isinstance(t, torch.Tensor) and t.numel() == 1 and t.dtype.is_floating_point:
            return float(t.reshape(()))
    return None


def _val(v: Any) -> Any:
    return v.meta.get("val") if isinstance(v, fx.Node) else None


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-6)


def _split_scalar(gm: fx.GraphModule, node: Any) -> tuple[Any, float] | None:
    """``(x, c)`` for ``mul(x, c)`` / ``mul(c, x)`` / ``div(x, 1/c)`` with a scalar constant."""
    if _call(node, _MUL) and len(node.args) == 2 and not node.kwargs:
        for x, c in (node.args, node.args[::-1]):
            value = _scalar(gm, c)
            if value is not None and isinstance(x, fx.Node):
                return x, value
    if _call(node, _DIV) and len(node.args) == 2 and not node.kwargs:
        value = _scalar(gm, node.args[1])
        if value and isinstance(node.args[0], fx.Node):
            return node.args[0], 1.0 / value
    return None


def _replace(gm: fx.GraphModule, old: Any, fn: Callable[..., Any], args: tuple, kwargs: dict | None = None) -> Any:
    with gm.graph.inserting_before(old):
        new = gm.graph.call_function(fn, args, kwargs or {})
    new.meta = dict(old.meta)
    old.replace_all_uses_with(new)
    return new


# ------------------------------------------------------------------ attention
def _attention(gm: fx.GraphModule, node: Any) -> bool:
    if not _call(node, _MATMUL) or len(node.args) != 2 or node.kwargs:
        return False
    probs, v = node.args
    nan_guard = None
    # where(isnan(p), 0, p): the exporters' guard for rows masked entirely
    if _call(probs, _where) and len(probs.args) == 3 and _scalar(gm, probs.args[0]) == 0.0:
        isnan = probs.args[2]
        if _call(isnan, torch.isnan) and isnan.args[0] is probs.args[1] and _only_user(probs, node):
            nan_guard, probs = probs, probs.args[1]
    if not (_call(probs, _softmax_nd) and probs.args[2] == "softmax" and len(probs.users) == (2 if nan_guard else 1)):
        return False
    scores, mask, scale = probs.args[0], None, 1.0
    value = _val(scores)
    if not isinstance(value, torch.Tensor) or probs.args[1] != value.dim() - 1 or value.dim() < 3:
        return False
    chain = [probs]
    if _call(scores, _ADD) and len(scores.args) == 2 and _only_user(scores, chain[-1]):
        for s, m in (scores.args, scores.args[::-1]):
            if isinstance(s, fx.Node) and (_call(s, _MATMUL) or _split_scalar(gm, s)):
                mvalue = _val(m)
                if isinstance(mvalue, torch.Tensor) and mvalue.dtype == value.dtype and 2 <= mvalue.dim() <= value.dim():
                    chain.append(scores)
                    scores, mask = s, m
                    break
        else:
            return False
    split = _split_scalar(gm, scores)
    if split is not None and _only_user(scores, chain[-1]):
        chain.append(scores)
        scores, scale = split[0], split[1]
    if not (_call(scores, _MATMUL) and len(scores.args) == 2 and _only_user(scores, chain[-1])):
        return False
    q, kt = scores.args
    for operand in ("q", "kt"):  # scales on q and kᵀ before the product (sqrt of the scale each)
        x = q if operand == "q" else kt
        s = _split_scalar(gm, x) if _call(x, _MUL | _DIV) and len(x.users) == 1 else None
        if s is not None:
            scale *= s[1]
            if operand == "q":
                q = s[0]
            else:
                kt = s[0]
    qv, ktv, vv = _val(q), _val(kt), _val(v)
    if not all(isinstance(t, torch.Tensor) and t.dtype == value.dtype for t in (qv, ktv, vv)):
        return False
    if value.dtype not in _FLOATS or not qv.dim() == ktv.dim() == vv.dim() == value.dim():
        return False
    if not (_same(qv.shape[:-2], ktv.shape[:-2]) and _same(qv.shape[:-2], vv.shape[:-2])):
        return False  # broadcast or grouped heads: SDPA wants equal leading dims
    with gm.graph.inserting_before(node):
        k = gm.graph.call_function(torch.transpose, (kt, -2, -1))
    k.meta["val"] = ktv.transpose(-2, -1)
    out = _replace(gm, node, F.scaled_dot_product_attention, (q, k, v), {"attn_mask": mask, "scale": scale})
    if nan_guard is not None:  # a NaN row of p gives a NaN row of p @ v: zero it, as the guard did
        with gm.graph.inserting_after(out):
            nan = gm.graph.call_function(torch.nan_to_num, (out,), {"nan": 0.0, "posinf": math.inf, "neginf": -math.inf})
        nan.meta = dict(out.meta)
        out.replace_all_uses_with(nan)
        nan.update_arg(0, out)
    return True


def _same(a: Any, b: Any) -> bool:
    return len(a) == len(b) and all(x is y or (str(x) == str(y)) for x, y in zip(a, b))


# ------------------------------------------------------------------ gelu
def _gelu(gm: fx.GraphModule, node: Any) -> bool:
    """Anchored at ``erf``: ``x·0.5·(erf(x/√2) + 1)`` in the orders exporters write it."""
    if not _call(node, torch.erf):
        return False
    inner = _split_scalar(gm, node.args[0])
    if inner is None or not _close(inner[1], 1 / math.sqrt(2)) or len(node.users) != 1:
        return False
    x = inner[0]
    plus = next(iter(node.users))
    if not (_call(plus, _ADD) and len(plus.args) == 2 and len(plus.users) == 1):
        return False
    one = plus.args[1] if plus.args[0] is node else plus.args[0]
    if one is node or not _close(_scalar(gm, one), 1.0):
        return False
    m1 = next(iter(plus.users))
    if not (_call(m1, _MUL) and len(m1.args) == 2):
        return False
    other = m1.args[1] if m1.args[0] is plus else m1.args[0]
    result = None
    if _close(_scalar(gm, other), 0.5) and len(m1.users) == 1:  # (e + 1)·0.5, then ·x
        m2 = next(iter(m1.users))
        if _call(m2, _MUL) and len(m2.args) == 2 and x in m2.args and m1 in m2.args:
            result = m2
    elif other is x and len(m1.users) == 1:  # (e + 1)·x, then ·0.5
        m2 = next(iter(m1.users))
        if _split_scalar(gm, m2) is not None and _close(_split_scalar(gm, m2)[1], 0.5):  # type: ignore[index]
            result = m2
    elif isinstance(other, fx.Node) and len(other.users) == 1:  # (x·0.5)·(e + 1)
        half = _split_scalar(gm, other)
        if half is not None and half[0] is x and _close(half[1], 0.5):
            result = m1
    if result is None or _val(x) is None or _val(x).dtype not in _FLOATS:
        return False
    _replace(gm, result, F.gelu, (x,))
    return True


# ------------------------------------------------------------------ norms
def _mean_last(node: Any) -> Any:
    """x for ``mean(x, [-1], keepdims)`` as the converter emits ReduceMean over the last axis."""
    if not _call(node, _reduce) or node.args[3] != "mean" or not node.args[2]:
        return None
    axes, x = node.args[1], node.args[0]
    value = _val(x)
    if not isinstance(value, torch.Tensor) or not isinstance(axes, (list, tuple)) or len(axes) != 1:
        return None
    return x if axes[0] in (-1, value.dim() - 1) else None


def _square_of(node: Any) -> Any:
    if _call(node, _square):
        return node.args[0]
    if _call(node, _MUL) and len(node.args) == 2 and node.args[0] is node.args[1]:
        return node.args[0]
    return None


def _norm_root(gm: fx.GraphModule, node: Any) -> tuple[Any, Any, float] | None:
    """``(numerator, mean_square_arg, eps)`` for ``n / sqrt(mean(y²) + eps)`` or ``n · (1 / sqrt(...))``."""
    if _call(node, _DIV) and len(node.args) == 2:
        numerator, root = node.args
    elif _call(node, _MUL) and len(node.args) == 2:
        for numerator, inverse in (node.args, node.args[::-1]):
            if _call(inverse, _DIV) and _close(_scalar(gm, inverse.args[0]), 1.0) and len(inverse.users) == 1:
                root = inverse.args[1]
                break
            if _call(inverse, torch.rsqrt) and len(inverse.users) == 1:
                root = ("rsqrt", inverse.args[0])
                break
        else:
            return None
    else:
        return None
    if isinstance(root, tuple):
        plus = root[1]
    elif _call(root, torch.sqrt) and len(root.users) == 1:
        plus = root.args[0]
    else:
        return None
    if not (_call(plus, _ADD) and len(plus.args) == 2 and len(plus.users) == 1):
        return None
    for mean, eps in (plus.args, plus.args[::-1]):
        e = _scalar(gm, eps)
        y = _mean_last(mean)
        if e is not None and y is not None and len(mean.users) == 1:
            sq = _square_of(y)
            if sq is not None and len(y.users) == 1:
                return numerator, sq, e
    return None


def _rms_norm(gm: fx.GraphModule, node: Any) -> bool:
    found = _norm_root(gm, node)
    if found is None or found[0] is not found[1]:
        return False
    x, _, eps = found
    value = _val(x)
    if not isinstance(value, torch.Tensor) or value.dtype not in _FLOATS:
        return False
    _replace(gm, node, F.rms_norm, (x, [value.shape[-1]]), {"eps": eps})
    return True


def _layer_norm(gm: fx.GraphModule, node: Any) -> bool:
    found = _norm_root(gm, node)
    if found is None or found[0] is not found[1]:
        return False
    centred, _, eps = found
    if not (_call(centred, _SUB) and len(centred.args) == 2):
        return False
    x, mean = centred.args
    if _mean_last(mean) is not x or len(mean.users) != 1:
        return False
    value = _val(x)
    if not isinstance(value, torch.Tensor) or value.dtype not in _FLOATS:
        return False
    _replace(gm, node, F.layer_norm, (x, [value.shape[-1]]), {"eps": eps})
    return True


_REWRITES: list[tuple[str, Callable[[fx.GraphModule, fx.Node], bool]]] = [
    ("attention", _attention), ("gelu", _gelu), ("layer_norm", _layer_norm), ("rms_norm", _rms_norm),
]
