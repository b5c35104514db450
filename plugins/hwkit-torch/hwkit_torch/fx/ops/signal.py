"""Signal processing: DFT, STFT, Hann/Hamming/Blackman windows, MelWeightMatrix."""

from __future__ import annotations

import math
from typing import Any

import torch

from hwkit_torch.fx import dtypes
from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.registry import NotSupported, op


def _complex(x: torch.Tensor) -> torch.Tensor:
    """[..., 1] real or [..., 2] (re, im) -> complex tensor without the last dim."""
    xd = x.to(torch.float64)  # numpy-like double precision FFT, cast back at the end
    if x.shape[-1] == 1:
        return torch.complex(xd[..., 0], torch.zeros_like(xd[..., 0]))
    return torch.complex(xd[..., 0], xd[..., 1])


def _dft(x: torch.Tensor, length: Any, axis: Any, inverse: bool, onesided: bool) -> torch.Tensor:
    if isinstance(axis, torch.Tensor):
        axis = int(axis.reshape(-1)[0])
    axis = axis % x.dim()
    if isinstance(length, torch.Tensor):
        length = int(length.reshape(-1)[0])
    if length is None:
        length = 2 * (x.shape[axis] - 1) if inverse and onesided else x.shape[axis]
    c = _complex(x)
    if inverse:
        if onesided:
            y = torch.fft.irfft(c, n=length, dim=axis).unsqueeze(-1)
            return y.to(x.dtype)
        y = torch.fft.ifft(c, n=length, dim=axis)
    else:
        y = torch.fft.fft(c, n=length, dim=axis)
        if onesided:
            y = y.narrow(axis, 0, y.shape[axis] // 2 + 1)
    return torch.view_as_real(y).to(x.dtype)


@op("DFT", since=17, until=19)
def dft_17(ctx: Ctx, node: NodeInfo, x: Value, length: Value = None) -> Value:
    return ctx.call(_dft, x, length, node.a("axis", 1), bool(node.a("inverse", 0)),
                    bool(node.a("onesided", 0)))


@op("DFT", since=20)
def dft(ctx: Ctx, node: NodeInfo, x: Value, length: Value = None, axis: Value = None) -> Value:
    ax: Any = -2 if axis is None else (ctx.elems(axis) or [axis])[0]
    return ctx.call(_dft, x, length, ax, bool(node.a("inverse", 0)), bool(node.a("onesided", 0)))


def _stft(x: torch.Tensor, step: torch.Tensor, window: Any, length: Any, onesided: bool) -> torch.Tensor:
    hop = int(step.reshape(-1)[0])
    n = int(length.reshape(-1)[0]) if length is not None else window.shape[0]
    sig = _complex(x)  # [B, L]
    frames = sig.unfold(-1, n, hop)  # [B, F, n]
    if window is not None:
        frames = frames * window.to(frames.real.dtype)
    y = torch.fft.fft(frames, dim=-1)
    if onesided:
        y = y[..., : n // 2 + 1]
    return torch.view_as_real(y).to(x.dtype)


@op("STFT")
def stft(ctx: Ctx, node: NodeInfo, x: Value, step: Value, window: Value = None,
         length: Value = None) -> Value:
    return ctx.call(_stft, x, step, window, length, bool(node.a("onesided", 1)))


def _window(size: torch.Tensor, kind: str, periodic: bool, dt: torch.dtype) -> torch.Tensor:
    n = int(size.reshape(-1)[0])
    i = torch.arange(n, dtype=torch.float64, device=size.device)
    d = n if periodic else n - 1
    if kind == "hann":
        w = torch.sin(i * math.pi / d) ** 2
    elif kind == "hamming":
        a = 25.0 / 46.0
        w = a - torch.cos(i * math.pi * 2 / d) * (1 - a)
    else:
        w = 0.42 - 0.5 * torch.cos(i * 2 * math.pi / d) + 0.08 * torch.cos(i * 4 * math.pi / d)
    return w.to(dt)


def _window_handler(kind: str) -> Any:
    def handler(ctx: Ctx, node: NodeInfo, size: Value) -> Value:
        dt = dtypes.ONNX_TO_TORCH.get(node.a("output_datatype", 1))
        if dt is None:
            raise NotSupported("output_datatype")
        return ctx.call(_window, size, kind, bool(node.a("periodic", 1)), dt)

    return handler


op("HannWindow")(_window_handler("hann"))
op("HammingWindow")(_window_handler("hamming"))
op("BlackmanWindow")(_window_handler("blackman"))


def _mel(num_bins: Any, dft_len: Any, rate: Any, lo: Any, hi: Any, dt: torch.dtype) -> torch.Tensor:
    nb, n, sr = int(num_bins), int(dft_len), int(rate)
    lo_m = 2595 * math.log1p(float(lo) / 700) / math.log(10)
    hi_m = 2595 * math.log1p(float(hi) / 700) / math.log(10)
    step = (hi_m - lo_m) / (nb + 2)
    bins = []
    for k in range(nb + 2):
        hz = 700 * math.expm1((k * step + lo_m) / 2595 * math.log(10))
        bins.append(int(((n + 1) * hz) // sr))
    out = torch.zeros(n // 2 + 1, nb, dtype=torch.float64)
    for i in range(nb):
        a, c, b = bins[i], bins[i + 1], bins[i + 2]
        if c == a:
            out[c, i] = 1
        else:
            for j in range(a, c + 1):
                out[j, i] = (j - a) / (c - a)
        if b > c:
            for j in range(c, b):
                out[j, i] = (b - j) / (b - c)
    return out.to(dt).to(num_bins.device if isinstance(num_bins, torch.Tensor) else None)


@op("MelWeightMatrix")
def mel_weight_matrix(ctx: Ctx, node: NodeInfo, num_bins: Value, dft_len: Value, rate: Value,
                      lo: Value, hi: Value) -> Value:
    dt = dtypes.ONNX_TO_TORCH.get(node.a("output_datatype", 1))
    if dt is None:
        raise NotSupported("output_datatype")
    return ctx.call(_mel, num_bins, dft_len, rate, lo, hi, dt)
