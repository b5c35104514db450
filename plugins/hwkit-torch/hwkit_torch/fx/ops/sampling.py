"""GridSample, AffineGrid, RoiAlign, DeformConv."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.registry import NotSupported, op

_MODES = {"linear": "bilinear", "bilinear": "bilinear", "nearest": "nearest",
          "cubic": "bicubic", "bicubic": "bicubic"}


@op("GridSample")
def grid_sample(ctx: Ctx, node: NodeInfo, x: Value, grid: Value) -> Value:
    mode = _MODES.get(node.a("mode", "linear" if node.opset >= 20 else "bilinear"))
    if mode is None:
        raise NotSupported(f"mode {node.a('mode')}")
    if ctx.rank(x) == 5 and mode == "bicubic":
        raise NotSupported("cubic GridSample on volumes")
    if ctx.rank(x) not in (4, 5):
        raise NotSupported(f"GridSample on rank {ctx.rank(x)}")
    return ctx.call(F.grid_sample, x, grid, mode=mode, padding_mode=node.a("padding_mode", "zeros"),
                    align_corners=bool(node.a("align_corners", 0)))


def _affine_grid(theta: torch.Tensor, size: torch.Tensor, align: bool) -> torch.Tensor:
    return F.affine_grid(theta, [int(s) for s in size.tolist()], align_corners=align)


@op("AffineGrid")
def affine_grid(ctx: Ctx, node: NodeInfo, theta: Value, size: Value) -> Value:
    align = bool(node.a("align_corners", 0))
    e = ctx.elems(size)
    if e is not None and all(isinstance(v, int) for v in e):
        return ctx.call(F.affine_grid, theta, e, align_corners=align)
    return ctx.call(_affine_grid, theta, size, align)


def _roi_axis(start: float, bin_size: float, pooled: int, grid: int, size: int, dev: Any) -> tuple:
    """Sample positions along one axis: low/high indices, weights and validity, [pooled*grid]."""
    p = torch.arange(pooled, dtype=torch.float64, device=dev)[:, None]
    g = torch.arange(grid, dtype=torch.float64, device=dev)[None, :]
    pos = (start + p * bin_size + (g + 0.5) * bin_size / grid).reshape(-1)
    valid = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor().to(torch.int64)
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    pos = torch.where(at_edge, low.to(pos.dtype), pos)
    frac = pos - low
    return low, high, 1.0 - frac, frac, valid


def _roi_align(x: torch.Tensor, rois: torch.Tensor, bidx: torch.Tensor, mode: str, oh: int, ow: int,
               ratio: int, scale: float, half: bool) -> torch.Tensor:
    _, c, h, w = x.shape
    off = 0.5 if half else 0.0
    outs = []
    for n in range(rois.shape[0]):
        x0, y0, x1, y1 = (float(v) * scale - off for v in rois[n].tolist())
        rw, rh = x1 - x0, y1 - y0
        if not half:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        gh = ratio if ratio > 0 else math.ceil(rh / oh)
        gw = ratio if ratio > 0 else math.ceil(rw / ow)
        yl, yh, wy0, wy1, vy = _roi_axis(y0, bh, oh, gh, h, x.device)
        xl, xh, wx0, wx1, vx = _roi_axis(x0, bw, ow, gw, w, x.device)
        feat = x[int(bidx[n])].to(torch.float64)
        terms = [
            (wy[:, None] * wx[None, :]) * feat[:, ys][:, :, xs]
            for ys, wy in ((yl, wy0), (yh, wy1)) for xs, wx in ((xl, wx0), (xh, wx1))
        ]
        mask = vy[:, None] & vx[None, :]
        if mode == "avg":
            v = torch.where(mask, sum(terms), torch.zeros_like(terms[0]))
            v = v.reshape(c, oh, gh, ow, gw).sum((2, 4)) / max(gh * gw, 1)
        else:
            v = torch.where(mask, torch.stack(terms).amax(0), torch.zeros_like(terms[0]))
            v = v.reshape(c, oh, gh, ow, gw).amax((2, 4))
        outs.append(v)
    return torch.stack(outs).to(x.dtype)


@op("RoiAlign")
def roi_align(ctx: Ctx, node: NodeInfo, x: Value, rois: Value, bidx: Value) -> Value:
    half = node.a("coordinate_transformation_mode", "half_pixel" if node.opset >= 16 else
                  "output_half_pixel") == "half_pixel"
    return ctx.call(_roi_align, x, rois, bidx, node.a("mode", "avg"), node.a("output_height", 1),
                    node.a("output_width", 1), node.a("sampling_ratio", 0),
                    node.a("spatial_scale", 1.0), half)


def _deform_conv(x: torch.Tensor, w: torch.Tensor, offset: torch.Tensor, b: Any, mask: Any,
                 dil: list[int], group: int, og: int, pads: list[int], strides: list[int]) -> torch.Tensor:
    n, ic, ih, iw = x.shape
    oc, icg, kh, kw = w.shape
    oh, ow = offset.shape[2:]
    off = offset.reshape(n, og, kh, kw, 2, oh, ow).to(torch.float64)
    ky = (torch.arange(kh, dtype=torch.float64, device=x.device) * dil[0]).reshape(1, 1, kh, 1, 1, 1)
    kx = (torch.arange(kw, dtype=torch.float64, device=x.device) * dil[1]).reshape(1, 1, 1, kw, 1, 1)
    oy = (torch.arange(oh, dtype=torch.float64, device=x.device) * strides[0] - pads[0]).reshape(1, 1, 1, 1, oh, 1)
    ox = (torch.arange(ow, dtype=torch.float64, device=x.device) * strides[1] - pads[1]).reshape(1, 1, 1, 1, 1, ow)
    py = oy + ky + off[:, :, :, :, 0]
    px = ox + kx + off[:, :, :, :, 1]
    grid = torch.stack([px / (iw - 1) * 2 - 1, py / (ih - 1) * 2 - 1], -1)  # [n,og,kh,kw,oh,ow,2]
    xs = x.to(torch.float64).reshape(n * og, ic // og, ih, iw)
    g = grid.reshape(n * og, kh * kw * oh, ow, 2)
    cols = F.grid_sample(xs, g, mode="bilinear", padding_mode="zeros", align_corners=True)
    cols = cols.reshape(n, og, ic // og, kh, kw, oh, ow)
    if mask is not None:
        cols = cols * mask.to(torch.float64).reshape(n, og, 1, kh, kw, oh, ow)
    cols = cols.reshape(n, group, icg, kh, kw, oh, ow)
    wg = w.to(torch.float64).reshape(group, oc // group, icg, kh, kw)
    y = torch.einsum("ngcijhw,gocij->ngohw", cols, wg).reshape(n, oc, oh, ow)
    if b is not None:
        y = y + b.to(torch.float64).reshape(1, -1, 1, 1)
    return y.to(x.dtype)


@op("DeformConv")
def deform_conv(ctx: Ctx, node: NodeInfo, x: Value, w: Value, offset: Value, b: Value = None,
                mask: Value = None) -> Value:
    if ctx.rank(x) != 4:
        raise NotSupported("DeformConv is supported for 2-D images only")
    return ctx.call(_deform_conv, x, w, offset, b, mask, node.a("dilations") or [1, 1],
                    node.a("group", 1), node.a("offset_group", 1), node.a("pads") or [0] * 4,
                    node.a("strides") or [1, 1])
