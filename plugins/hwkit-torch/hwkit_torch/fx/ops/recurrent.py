"""Recurrent ops: RNN, GRU, LSTM, LinearAttention, CausalConvWithState.

The sequence loop is a Python loop over (static) time steps inside one helper; dynamo
unrolls it under torch.compile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.registry import NotSupported, op


Activation = Callable[[torch.Tensor], torch.Tensor]


def _act(name: str, alpha: Any = None, beta: Any = None) -> Activation:
    n = name.lower()
    if n == "sigmoid":
        return torch.sigmoid
    if n == "tanh":
        return torch.tanh
    if n == "relu":
        return torch.relu
    if n == "hardsigmoid":
        a, b = (0.2 if alpha is None else alpha), (0.5 if beta is None else beta)
        return lambda x: torch.clamp(a * x + b, 0, 1)
    if n == "leakyrelu":
        a = 0.01 if alpha is None else alpha
        return lambda x: torch.where(x >= 0, x, a * x)
    if n == "thresholdedrelu":
        a = 1.0 if alpha is None else alpha
        return lambda x: torch.where(x > a, x, torch.zeros_like(x))
    if n == "scaledtanh":
        return lambda x: alpha * torch.tanh(beta * x)
    if n == "affine":
        return lambda x: alpha * x + beta
    if n == "elu":
        a = 1.0 if alpha is None else alpha
        return lambda x: torch.where(x >= 0, x, a * (torch.exp(x) - 1))
    if n == "softsign":
        return F.softsign
    if n == "softplus":
        return F.softplus
    raise NotImplementedError(n)


def _no_act(x: torch.Tensor) -> torch.Tensor:
    """Fills the activation slots a cell does not have (g and h of RNN, h of GRU); never called."""
    raise AssertionError("this cell kind has no such activation")


_DEFAULT_ACTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _rnn(kind: str, x: torch.Tensor, w: torch.Tensor, r: torch.Tensor, b: Any, seq_lens: Any,
         h0: Any, c0: Any, p: Any, acts: list[Any], clip: Any, layout: int, lbr: int,
         direction: str, input_forget: int) -> Any:
    if layout:
        x = x.transpose(0, 1)
        h0 = None if h0 is None else h0.transpose(0, 1)
        c0 = None if c0 is None else c0.transpose(0, 1)
    T, B, _ = x.shape
    G, H = _GATES[kind], r.shape[-1]
    fns = [_act(*a) for a in acts]
    per_dir = len(_DEFAULT_ACTS[kind])  # f (RNN); f, g (GRU); f, g, h (LSTM) for each direction
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    ys, hs, cs = [], [], []
    lens = None if seq_lens is None else seq_lens.to(torch.int64)
    for d, name in enumerate(dirs):
        wd, rd = w[d], r[d]
        bw = b[d, : G * H] if b is not None else torch.zeros(G * H, dtype=x.dtype, device=x.device)
        br = b[d, G * H:] if b is not None else torch.zeros(G * H, dtype=x.dtype, device=x.device)
        h = h0[d] if h0 is not None else torch.zeros(B, H, dtype=x.dtype, device=x.device)
        c = c0[d] if c0 is not None else torch.zeros(B, H, dtype=x.dtype, device=x.device)
        f_act, g_act, h_act = (fns[per_dir * d:per_dir * (d + 1)] + [_no_act, _no_act])[:3]
        out = [torch.zeros(B, H, dtype=x.dtype, device=x.device) for _ in range(T)]
        steps = range(T - 1, -1, -1) if name == "reverse" else range(T)
        for t in steps:
            xt = x[t]
            gx = xt @ wd.t() + bw
            if kind == "RNN":
                gx = gx + h @ rd.t() + br
                if clip is not None:
                    gx = gx.clamp(-clip, clip)
                hn = f_act(gx)
            elif kind == "GRU":
                zx, rx, hx = gx.split(H, -1)
                rz, rr, rh = rd.split(H, 0)
                bz, brr, bh = br.split(H, -1)
                zg = zx + h @ rz.t() + bz
                rg = rx + h @ rr.t() + brr
                if clip is not None:
                    zg, rg = zg.clamp(-clip, clip), rg.clamp(-clip, clip)
                z, rgate = f_act(zg), f_act(rg)
                if lbr:
                    hg = hx + rgate * (h @ rh.t() + bh)
                else:
                    hg = hx + (rgate * h) @ rh.t() + bh
                if clip is not None:
                    hg = hg.clamp(-clip, clip)
                hn = (1 - z) * g_act(hg) + z * h
            else:
                g = gx + h @ rd.t() + br
                if clip is not None:
                    g = g.clamp(-clip, clip)
                ig, og, fg, cg = g.split(H, -1)
                if p is not None:
                    pi, po, pf = p[d].split(H, -1)
                    ig = ig + pi * c
                    fg = fg + pf * c
                i_, f_ = f_act(ig), f_act(fg)
                if input_forget:
                    f_ = 1 - i_
                cn = f_ * c + i_ * g_act(cg)
                if p is not None:
                    og = og + po * cn
                hn = f_act(og) * h_act(cn)
            if lens is not None:
                # Steps past a sequence's length keep the state and emit zeros; the same
                # mask is right for the reverse direction, which starts at len - 1.
                valid = (t < lens).reshape(B, 1)
                hn = torch.where(valid, hn, h)
                if kind == "LSTM":
                    cn = torch.where(valid, cn, c)
                out[t] = torch.where(valid, hn, torch.zeros_like(hn))
            else:
                out[t] = hn
            h = hn
            if kind == "LSTM":
                c = cn
        ys.append(torch.stack(out))
        hs.append(h)
        cs.append(c)
    y = torch.stack(ys, 1)  # [T, D, B, H]
    yh = torch.stack(hs)
    yc = torch.stack(cs)
    if layout:
        y = y.permute(2, 0, 1, 3)
        yh, yc = yh.transpose(0, 1), yc.transpose(0, 1)
    return y, yh, yc


def _rnn_handler(kind: str) -> Any:
    def handler(ctx: Ctx, node: NodeInfo, x: Value, w: Value, r: Value, b: Value = None,
                seq_lens: Value = None, h0: Value = None, *rest: Value) -> Any:
        direction = node.a("direction", "forward")
        nd = 2 if direction == "bidirectional" else 1
        names = node.a("activations") or _DEFAULT_ACTS[kind] * nd
        alphas = node.a("activation_alpha") or []
        betas = node.a("activation_beta") or []
        acts = [(n, alphas[i] if i < len(alphas) else None, betas[i] if i < len(betas) else None)
                for i, n in enumerate(names)]
        try:
            for a in acts:
                _act(*a)
        except NotImplementedError as e:
            raise NotSupported(f"activation {e}") from e
        c0 = rest[0] if kind == "LSTM" and rest else None
        p = rest[1] if kind == "LSTM" and len(rest) > 1 else None
        outs = ctx.call_n(_rnn, 3, kind, x, w, r, b, seq_lens, h0, c0, p, acts, node.a("clip"),
                          node.a("layout", 0), node.a("linear_before_reset", 0), direction,
                          node.a("input_forget", 0))
        return outs[: node.n_outputs]

    return handler


op("RNN")(_rnn_handler("RNN"))
op("GRU")(_rnn_handler("GRU"))
op("LSTM")(_rnn_handler("LSTM"))


def _linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: Any, decay: Any,
                      beta: Any, hq: int, hkv: int, scale: float, rule: str) -> Any:
    b, t, _ = q.shape
    dk = q.shape[-1] // hq
    dv = v.shape[-1] // hkv
    grp = hq // hkv
    q4 = q.reshape(b, t, hq, dk).transpose(1, 2).float()
    k4 = k.reshape(b, t, hkv, dk).transpose(1, 2).float()
    v4 = v.reshape(b, t, hkv, dv).transpose(1, 2).float()
    gating = rule in ("gated", "gated_delta")
    delta = rule in ("delta", "gated_delta")
    if decay is not None:
        if decay.shape[-1] == hkv:
            d4 = decay.reshape(b, t, hkv, 1).transpose(1, 2).float()
        else:
            d4 = decay.reshape(b, t, hkv, dk).transpose(1, 2).float()
    if beta is not None:
        b4 = beta.reshape(b, t, beta.shape[-1], 1).transpose(1, 2).float()
    state = past.float() if past is not None else torch.zeros(b, hkv, dk, dv, device=q.device)
    sc = scale if scale else 1.0 / math.sqrt(dk)
    outs = []
    for i in range(t):
        qt, kt, vt = q4[:, :, i], k4[:, :, i], v4[:, :, i]
        if gating:
            state = state * torch.exp(d4[:, :, i])[..., None]
        if delta:
            ret = torch.einsum("bhdm,bhd->bhm", state, kt)
            vt = b4[:, :, i] * (vt - ret)
        state = state + kt[..., :, None] * vt[..., None, :]
        sr = state if grp == 1 else state.repeat_interleave(grp, 1)
        outs.append(sc * torch.einsum("bhd,bhdm->bhm", qt, sr))
    o = torch.stack(outs, 2).transpose(1, 2).reshape(b, t, hq * dv).to(q.dtype)
    return o, state.to(past.dtype if past is not None else q.dtype)


@op("LinearAttention")
def linear_attention(ctx: Ctx, node: NodeInfo, q: Value, k: Value, v: Value, past: Value = None,
                     decay: Value = None, beta: Value = None) -> Any:
    outs = ctx.call_n(_linear_attention, 2, q, k, v, past, decay, beta, node.a("q_num_heads"),
                      node.a("kv_num_heads"), node.a("scale", 0.0),
                      node.a("update_rule", "gated_delta"))
    return outs[: node.n_outputs]


def _causal_conv(x: torch.Tensor, w: torch.Tensor, b: Any, past: Any, act: str) -> Any:
    bs, c, _ = x.shape
    k = w.shape[2]
    pad = past if past is not None else torch.zeros(bs, c, k - 1, dtype=x.dtype, device=x.device)
    padded = torch.cat([pad, x], 2)
    y = F.conv1d(padded, w, b, groups=c)
    if act in ("silu", "swish"):
        y = (y.float() * torch.sigmoid(y.float())).to(x.dtype)
    return y, padded[:, :, padded.shape[2] - (k - 1):]


@op("CausalConvWithState")
def causal_conv_with_state(ctx: Ctx, node: NodeInfo, x: Value, w: Value, b: Value = None,
                           past: Value = None) -> Any:
    outs = ctx.call_n(_causal_conv, 2, x, w, b, past, node.a("activation", "none"))
    return outs[: node.n_outputs]
