"""Attention (opset 23+) and RotaryEmbedding.

Attention maps to ``F.scaled_dot_product_attention`` (causal, masks, GQA, scale) when no
feature outside SDPA's contract is used; otherwise (softcap, qk output, sliding windows,
nonpad_kv_seqlen, softmax precision) an explicit matmul/softmax form that follows the ONNX
reference, including its all-masked-row = 0 convention.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from hwkit_torch.fx import dtypes
from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.registry import op


def _to_heads(x: torch.Tensor, n: int) -> torch.Tensor:
    b, s, h = x.shape
    return x.reshape(b, s, n, h // n).transpose(1, 2)


def _bias(mask: Any, q: torch.Tensor, kv_len: int, causal: bool, offset: Any, lw: int, rw: int,
          nonpad: Any) -> Any:
    """Additive float bias (or None) combining mask, causal, window and padding rules."""
    dt = q.dtype
    qlen = q.shape[2]
    dev = q.device
    neg = torch.tensor(-math.inf, dtype=dt, device=dev)
    zero = torch.tensor(0.0, dtype=dt, device=dev)
    bias = None
    if mask is not None:
        pad = kv_len - mask.shape[-1]
        if pad > 0:
            mask = F.pad(mask, (0, pad), value=False if mask.dtype == torch.bool else -math.inf)
        bias = torch.where(mask, zero, neg) if mask.dtype == torch.bool else mask.to(dt)
    i = torch.arange(qlen, device=dev).reshape(qlen, 1)
    j = torch.arange(kv_len, device=dev).reshape(1, kv_len)
    off = offset
    if nonpad is not None:
        off = (nonpad.reshape(-1) - qlen).reshape(-1, 1, 1, 1)
    if causal:
        c = torch.where(j <= i + off, zero, neg)
        bias = c if bias is None else bias + c
    if lw >= 0 or rw >= 0:
        diff = (i + off) - j
        allowed = torch.ones_like(diff, dtype=torch.bool)
        if lw >= 0:
            allowed = allowed & (diff <= lw)
        if rw >= 0:
            allowed = allowed & (-diff <= rw)
        w = torch.where(allowed, zero, neg)
        bias = w if bias is None else bias + w
    if nonpad is not None:
        p = torch.where(j.reshape(1, 1, 1, kv_len) < nonpad.reshape(-1, 1, 1, 1), zero, neg)
        bias = p if bias is None else bias + p
    return bias


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Any, past_k: Any,
               past_v: Any, nonpad: Any, scale: Any, causal: bool, qh: Any, kvh: Any,
               softcap: Any, mode: int, sm_dtype: Any, lw: int, rw: int, sdpa: bool) -> Any:
    three_d = q.dim() == 3
    if three_d:
        q, k, v = _to_heads(q, qh), _to_heads(k, kvh), _to_heads(v, kvh)
    if past_k is not None:
        k = torch.cat([past_k, k], 2)
        v = torch.cat([past_v, v], 2)
    present_k, present_v = k, v
    kv_len = k.shape[2]
    offset = past_k.shape[2] if past_k is not None else 0
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[3])
    if sdpa:
        top_left_causal = causal and offset == 0 and mask is None
        bias = None if top_left_causal else _bias(mask, q, kv_len, causal, offset, lw, rw, nonpad)
        if bias is not None and mask is not None and mask.dtype == torch.bool and not causal:
            bias = mask if mask.shape[-1] == kv_len else bias
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, is_causal=top_left_causal, scale=scale,
            enable_gqa=q.shape[1] != k.shape[1])
        qk = None
    else:
        if q.shape[1] != k.shape[1]:
            rep = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        s = math.sqrt(scale)
        qk = torch.matmul(q * s, (k * s).transpose(-1, -2))
        if softcap:
            qk = torch.tanh(qk / softcap) * softcap
        capped = qk
        bias = _bias(mask, q, kv_len, causal, offset, lw, rw, nonpad)
        with_bias = qk if bias is None else qk + bias
        if mode == 2:
            qk = with_bias
        logits = with_bias.to(sm_dtype) if sm_dtype is not None else with_bias
        p = torch.softmax(logits, -1)
        if bias is not None:
            dead = torch.isneginf(bias.amax(-1, keepdim=True))
            p = torch.where(dead, torch.zeros_like(p), p)
            p = torch.nan_to_num(p, nan=0.0)
        if mode == 3:
            qk = p
        elif mode == 1:
            qk = capped
        qk = qk.to(q.dtype)
        y = torch.matmul(p.to(q.dtype), v)
    if three_d:
        y = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)
    return y, present_k, present_v, qk


@op("Attention", since=23)
def attention(ctx: Ctx, node: NodeInfo, q: Value, k: Value, v: Value, mask: Value = None,
              past_k: Value = None, past_v: Value = None, nonpad: Value = None) -> Any:
    outs = node.outputs
    want_qk = len(outs) > 3 and outs[3] != ""
    softcap = node.a("softcap", 0.0)
    sm = node.a("softmax_precision")
    sm_dtype = dtypes.ONNX_TO_TORCH.get(sm) if sm is not None else None
    lw, rw = node.a("left_window_size", -1), node.a("right_window_size", -1)
    sdpa = (not want_qk and not softcap and nonpad is None and lw < 0 and rw < 0
            and (sm_dtype is None or sm_dtype == ctx.dtype(q)) and ctx.dtype(q) != torch.float16)
    res = ctx.call_n(_attention, 4, q, k, v, mask, past_k, past_v, nonpad, node.a("scale"),
                     bool(node.a("is_causal", 0)), node.a("q_num_heads"), node.a("kv_num_heads"),
                     softcap, node.a("qk_matmul_output_mode", 0), sm_dtype, lw, rw, sdpa)
    return res[: node.n_outputs]


def _rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pos: Any, interleaved: bool,
            rot_dim: int, heads: int) -> torch.Tensor:
    shape = x.shape
    if x.dim() == 4:
        x = x.transpose(1, 2)
    else:
        x = x.reshape(shape[0], shape[1], heads, shape[2] // heads)
    rd = rot_dim or x.shape[3]
    xr, xp = x[..., :rd], x[..., rd:]
    if pos is not None:
        cos, sin = cos[pos], sin[pos]
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    if interleaved:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
    else:
        x1, x2 = xr.chunk(2, -1)
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if interleaved:
        xr = torch.stack([real, imag], -1).reshape(xr.shape)
    else:
        xr = torch.cat([real, imag], -1)
    y = torch.cat([xr, xp], -1)
    return y.reshape(shape) if len(shape) == 3 else y.transpose(1, 2)


@op("RotaryEmbedding", since=23)
def rotary_embedding(ctx: Ctx, node: NodeInfo, x: Value, cos: Value, sin: Value,
                     pos: Value = None) -> Value:
    return ctx.call(_rotary, x, cos, sin, pos, bool(node.a("interleaved", 0)),
                    node.a("rotary_embedding_dim", 0), node.a("num_heads", 0))


def _flex_scores(q: torch.Tensor, k: torch.Tensor, scale: Any, compute: torch.dtype) -> torch.Tensor:
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    if q.shape[1] != k.shape[1]:
        k = k.repeat_interleave(q.shape[1] // k.shape[1], 1)
    s = torch.tensor(math.sqrt(scale), dtype=torch.float32).to(q.dtype)
    return torch.matmul(q * s, (k * s).transpose(-1, -2)).to(compute)


def _flex_out(p: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    if v.shape[1] != heads:
        v = v.repeat_interleave(heads // v.shape[1], 1)
    return torch.matmul(p, v.to(p.dtype)).to(v.dtype)


def _inline_mod(ctx: Ctx, node: NodeInfo, graph: Any, x: Value) -> Value:
    """Run a one-input/one-output modifier subgraph inline on ``x``."""
    env = dict(node.env)
    env[graph.input[0].name] = x
    ctx.run_inline(graph, env)
    return env[graph.output[0].name]


@op("FlexAttention", domain="ai.onnx.preview")
def flex_attention(ctx: Ctx, node: NodeInfo, q: Value, k: Value, v: Value) -> Value:
    sp = node.a("softmax_precision")
    dt = ctx.dtype(q)
    compute = dtypes.ONNX_TO_TORCH[sp] if sp is not None else (
        torch.float64 if dt == torch.float64 else torch.float32)
    scores = ctx.call(_flex_scores, q, k, node.a("scale"), compute)
    if node.a("score_mod") is not None:
        scores = ctx.cast(_inline_mod(ctx, node, node.a("score_mod"), scores), compute)
    probs = ctx.call(torch.softmax, scores, -1)
    if node.a("prob_mod") is not None:
        probs = ctx.cast(_inline_mod(ctx, node, node.a("prob_mod"), probs), compute)
    return ctx.call(_flex_out, probs, v, ctx.static_shape(q)[1])
