"""Conv, ConvTranspose, ConvInteger, Pad, Col2Im."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.registry import NotSupported, op

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def known(dims: list[int | None], what: str) -> list[int]:
    """``dims`` when all are known at conversion time; else NotSupported saying ``what`` needs them."""
    sizes = [d for d in dims if d is not None]
    if len(sizes) != len(dims):
        raise NotSupported(what)
    return sizes


def same_pads(in_sizes: list[int | None], k: list[int | None], s: list[int], d: list[int],
              mode: str) -> list[int]:
    """ONNX auto_pad SAME_UPPER/SAME_LOWER pads, as [begins..., ends...]."""
    sizes = known(in_sizes, "auto_pad SAME with dynamic spatial dims")
    kernel = known(k, "auto_pad SAME with a kernel size unknown at conversion time")
    begins, ends = [], []
    for i, kk, ss, dd in zip(sizes, kernel, s, d):
        out = math.ceil(i / ss)
        total = max((out - 1) * ss + (kk - 1) * dd + 1 - i, 0)
        small = total // 2
        if mode == "SAME_UPPER":
            begins.append(small)
            ends.append(total - small)
        else:
            begins.append(total - small)
            ends.append(small)
    return begins + ends


def conv_geometry(ctx: Ctx, node: NodeInfo, x: Value, kshape: list[int | None]) -> tuple[list[int], ...]:
    """(strides, dilations, pads) of a convolution; ``kshape`` may have unknown sizes unless
    auto_pad needs them."""
    n = len(kshape)
    strides = node.a("strides") or [1] * n
    dil = node.a("dilations") or [1] * n
    auto = node.a("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = same_pads(ctx.static_shape(x)[2:], kshape, strides, dil, auto)
    elif auto == "VALID":
        pads = [0] * (2 * n)
    else:
        pads = node.a("pads") or [0] * (2 * n)
    return list(strides), list(dil), list(pads)


def torch_pad_list(pads: list[int]) -> list[int]:
    """ONNX [b1..bn, e1..en] (spatial) -> F.pad's last-dim-first [b_n, e_n, ...]."""
    n = len(pads) // 2
    out: list[int] = []
    for i in reversed(range(n)):
        out += [pads[i], pads[i + n]]
    return out


def conv_padded(x: torch.Tensor, w: torch.Tensor, b: Any, strides: list[int], pads: list[int],
          dil: list[int], group: int) -> torch.Tensor:
    n = x.dim() - 2
    if pads[:n] == pads[n:]:
        padding: Any = pads[:n]
    else:
        x = F.pad(x, torch_pad_list(pads))
        padding = 0
    return _CONV[n](x, w, b, strides, padding, dil, group)


@op("Conv")
def conv(ctx: Ctx, node: NodeInfo, x: Value, w: Value, b: Value = None) -> Value:
    r = ctx.rank(x)
    if r - 2 not in _CONV:
        raise NotSupported(f"{r - 2}-D convolution")
    kshape = node.a("kernel_shape") or ctx.static_shape(w)[2:]
    strides, dil, pads = conv_geometry(ctx, node, x, kshape)
    if isinstance(w, torch.Tensor) and w.dim() == 4 and w.dtype.is_floating_point:
        # oneDNN runs 2-D convolutions, depthwise ones above all, fastest in channels_last; a
        # weight in that layout makes the output channels_last too, so activations stay in it
        # from the first convolution on (other ops follow the layout of their input).
        name = ctx.tensor_names.get(id(w))
        w = w.contiguous(memory_format=torch.channels_last)
        if name is not None:
            ctx.tensor_names[id(w)] = name
        if node.a("group", 1) > 1:  # a [C, 1, k, k] weight carries no layout: the input must
            x = ctx.method("contiguous", x, memory_format=torch.channels_last)  # (free if already)
    return ctx.call(conv_padded, x, w, b, strides, pads, dil, node.a("group", 1))


def _conv_integer(x: torch.Tensor, w: torch.Tensor, xz: Any, wz: Any, strides: list[int],
                  pads: list[int], dil: list[int], group: int) -> torch.Tensor:
    xf = x.to(torch.float64) - (0 if xz is None else xz.to(torch.float64))
    wf = w.to(torch.float64)
    if wz is not None:
        wz = wz.to(torch.float64)
        wf = wf - (wz.reshape([-1] + [1] * (w.dim() - 1)) if wz.numel() > 1 else wz)
    return conv_padded(xf, wf, None, strides, pads, dil, group).round().to(torch.int32)


@op("ConvInteger")
def conv_integer(ctx: Ctx, node: NodeInfo, x: Value, w: Value, xz: Value = None, wz: Value = None) -> Value:
    kshape = node.a("kernel_shape") or ctx.static_shape(w)[2:]
    strides, dil, pads = conv_geometry(ctx, node, x, kshape)
    return ctx.call(_conv_integer, x, w, xz, wz, strides, pads, dil, node.a("group", 1))


def crop_or_pad(y: torch.Tensor, begins: list[int], ends: list[int]) -> torch.Tensor:
    """Remove ``begins``/``ends`` from each spatial dim (negative values add zeros)."""
    n = len(begins)
    grow = [-min(b, 0) for b in begins] + [-min(e, 0) for e in ends]
    if any(grow):
        y = F.pad(y, torch_pad_list(grow))
    for i in range(n):
        b, e = max(begins[i], 0), max(ends[i], 0)
        if b or e:
            y = y.narrow(2 + i, b, y.shape[2 + i] - b - e)
    return y


def _conv_transpose(x: torch.Tensor, w: torch.Tensor, b: Any, strides: list[int], begins: list[int],
                    ends: list[int], dil: list[int], group: int) -> torch.Tensor:
    n = x.dim() - 2
    y = _CONV_T[n](x, w, None, strides, 0, 0, group, dil)
    y = crop_or_pad(y, begins, ends)
    if b is not None:
        y = y + b.reshape([1, -1] + [1] * n)
    return y


@op("ConvTranspose")
def conv_transpose(ctx: Ctx, node: NodeInfo, x: Value, w: Value, b: Value = None) -> Value:
    r = ctx.rank(x)
    n = r - 2
    if n not in _CONV_T:
        raise NotSupported(f"{n}-D transposed convolution")
    kshape = node.a("kernel_shape") or ctx.static_shape(w)[2:]
    strides = node.a("strides") or [1] * n
    dil = node.a("dilations") or [1] * n
    opad = node.a("output_padding") or [0] * n
    auto = node.a("auto_pad", "NOTSET")
    pads = node.a("pads")
    out_shape = node.a("output_shape")
    if pads is None and (auto in ("SAME_UPPER", "SAME_LOWER") or out_shape is not None):
        ins = known(ctx.static_shape(x)[2:], "output_shape/auto_pad with dynamic spatial dims")
        kshape = known(kshape, "output_shape/auto_pad with a kernel size unknown at conversion time")
        if out_shape is None:
            out_shape = [ins[i] * strides[i] for i in range(n)]
        out_shape = list(out_shape)[-n:]
        total = [strides[i] * (ins[i] - 1) + opad[i] + ((kshape[i] - 1) * dil[i] + 1) - out_shape[i]
                 for i in range(n)]
        if auto == "SAME_UPPER":
            begins = [t // 2 for t in total]
            ends = [t - t // 2 for t in total]
        else:
            begins = [t - t // 2 for t in total]
            ends = [t // 2 for t in total]
    else:
        pads = pads or [0] * (2 * n)
        begins, ends = list(pads[:n]), list(pads[n:])
    ends = [e - o for e, o in zip(ends, opad)]
    return ctx.call(_conv_transpose, x, w, b, list(strides), begins, ends, list(dil), node.a("group", 1))


# ------------------------------------------------------------------ Pad
def _pad_indices(dim: int, b: int, e: int, mode: str, dev: torch.device) -> torch.Tensor:
    pos = torch.arange(-b, dim + e, device=dev)
    if mode == "edge":
        return pos.clamp(0, dim - 1)
    if mode == "wrap":
        return pos % dim
    # reflect (without repeating the edge)
    if dim == 1:
        return torch.zeros_like(pos)
    period = 2 * (dim - 1)
    p = pos % period
    return torch.where(p < dim, p, period - p)


def _pad(x: torch.Tensor, pads: list[int], value: Any, mode: str) -> torch.Tensor:
    r = x.dim()
    if mode == "constant":
        v = 0 if value is None else (value.reshape(-1)[0].item() if isinstance(value, torch.Tensor) else value)
        tp: list[int] = []
        for i in reversed(range(r)):
            tp += [pads[i], pads[i + r]]
        if x.dtype == torch.bool or x.dtype in (torch.uint16, torch.uint32, torch.uint64):
            return F.pad(x.to(torch.int64), tp, value=v).to(x.dtype)
        return F.pad(x, tp, value=v)
    for i in range(r):
        b, e = pads[i], pads[i + r]
        if b < 0 or e < 0:
            x = x.narrow(i, max(-b, 0), x.shape[i] - max(-b, 0) - max(-e, 0))
            b, e = max(b, 0), max(e, 0)
        if b or e:
            x = x.index_select(i, _pad_indices(x.shape[i], b, e, mode, x.device))
    return x


def _pad_rt(x: torch.Tensor, pads: torch.Tensor, value: Any, axes: Any, mode: str) -> torch.Tensor:
    p = [int(v) for v in pads.tolist()]
    r = x.dim()
    if axes is not None:
        ax = [int(a) % r for a in axes.tolist()]
        full = [0] * (2 * r)
        for j, a in enumerate(ax):
            full[a], full[a + r] = p[j], p[j + len(ax)]
        p = full
    return _pad(x, p, value, mode)


@op("Pad")
def pad(ctx: Ctx, node: NodeInfo, x: Value, pads: Value = None, value: Value = None,
        axes: Value = None) -> Value:
    mode = node.a("mode", "constant")
    r = ctx.rank(x)
    if node.opset < 11:
        p = node.a("pads") or node.a("paddings")
        return ctx.call(_pad, x, list(p), node.a("value", 0.0), mode)
    p = ctx.elems(pads)
    ax = None if axes is None else ctx.elems(axes)
    if p is None or (axes is not None and ax is None):
        return ctx.call(_pad_rt, x, pads, value, axes, mode)
    if ax is not None:
        full = [0] * (2 * r)
        for j, a in enumerate(ax):
            a %= r
            full[a], full[a + r] = p[j], p[j + len(ax)]
        p = full
    return ctx.call(_pad, x, list(p), value, mode)


def _col2im(x: torch.Tensor, image: torch.Tensor, block: torch.Tensor, dil: list[int],
            pads: list[int], strides: list[int]) -> torch.Tensor:
    img = [int(v) for v in image.tolist()]
    blk = [int(v) for v in block.tolist()]
    if len(img) != 2 or pads[:2] != pads[2:]:
        raise NotImplementedError("Col2Im supports 2-D images with symmetric pads")
    return F.fold(x, tuple(img), tuple(blk), dilation=tuple(dil), padding=tuple(pads[:2]),
                  stride=tuple(strides))


@op("Col2Im")
def col2im(ctx: Ctx, node: NodeInfo, x: Value, image: Value, block: Value) -> Value:
    n = ctx.static_shape(image)[0]
    if n != 2:
        raise NotSupported("Col2Im is supported for 2-D images only")
    pads = node.a("pads") or [0] * 4
    if pads[:2] != pads[2:]:
        raise NotSupported("asymmetric Col2Im pads")
    return ctx.call(_col2im, x, image, block, node.a("dilations") or [1, 1], pads,
                    node.a("strides") or [1, 1])
