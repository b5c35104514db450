"""Resize / Upsample.

Common modes (bilinear/nearest with torch-compatible coordinate transforms) map to
``F.interpolate``. Every other combination is done separably: per resized axis, a table of
source indices and weights is computed with numpy following the ONNX definition (at
conversion time when shapes and scales are known, else at run time), then applied as a
gather plus weighted sum.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.registry import NotSupported, op


def _coeffs(mode: str, ratio: float, scale: float, a: dict[str, Any]) -> np.ndarray:
    if mode == "nearest":
        if float(ratio).is_integer():
            return np.array([0.0, 1.0])
        nm = a["nearest_mode"]
        if nm == "round_prefer_floor":
            return np.array([ratio <= 0.5, ratio > 0.5], dtype=np.float64)
        if nm == "round_prefer_ceil":
            return np.array([ratio < 0.5, ratio >= 0.5], dtype=np.float64)
        if nm == "floor":
            return np.array([1.0, 0.0])
        return np.array([0.0, 1.0])
    if mode == "linear":
        if a["antialias"] and scale < 1:
            start = int(np.floor(-1 / scale) + 1)
            args = (np.arange(start, start + 2 - 2 * start) - ratio) * scale
            c = np.clip(1 - np.abs(args), 0, 1)
            return c / c.sum()
        return np.array([1 - ratio, ratio])
    A = a["cubic_coeff_a"]
    if a["antialias"] and scale < 1:
        def k(x: float) -> float:
            x = abs(x)
            if x <= 1:
                return (A + 2) * x**3 - (A + 3) * x**2 + 1
            if x < 2:
                return A * x**3 - 5 * A * x**2 + 8 * A * x - 4 * A
            return 0.0
        i0 = int(np.floor(-2 / scale) + 1)
        c = np.array([k(scale * (i - ratio)) for i in range(i0, 2 - i0)])
        return c / c.sum()
    r = ratio
    return np.array([
        ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
        ((A + 2) * r - (A + 3)) * r * r + 1,
        ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
        ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A,
    ])


def _axis_table(in_w: int, scale: float, out_w: int, roi: Any, a: dict[str, Any]) -> tuple:
    ctm = a["coordinate_transformation_mode"]
    y = np.arange(out_w, dtype=np.float64)
    fw = scale * in_w
    extrap = None
    if ctm == "align_corners":
        x = np.zeros(out_w) if fw == 1 else y * (in_w - 1) / (fw - 1)
    elif ctm == "asymmetric":
        x = y / scale
    elif ctm == "tf_crop_and_resize":
        if fw == 1:
            x = np.full(out_w, (roi[1] - roi[0]) * (in_w - 1) / 2)
        else:
            x = y * (roi[1] - roi[0]) * (in_w - 1) / (fw - 1)
        x = x + roi[0] * (in_w - 1)
        extrap = (x < 0) | (x > in_w - 1)
    elif ctm == "pytorch_half_pixel":
        x = np.full(out_w, -0.5) if fw == 1 else (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel_symmetric":
        adj = out_w / fw
        x = in_w / 2 * (1 - adj) + (y + 0.5) / scale - 0.5
    else:
        raise NotSupported(f"coordinate_transformation_mode {ctm}")
    xi = np.floor(x).astype(np.int64)
    ratios = np.where(x == xi, 1.0, x - xi)
    coeffs = np.stack([_coeffs(a["mode"], float(r), scale, a) for r in ratios]) if out_w else np.zeros((0, 2))
    n = coeffs.shape[1]
    pad = int(np.ceil(n / 2))
    xp = x + pad
    pp = np.floor(xp).astype(np.int64)
    frac = xp - pp
    if n % 2 == 0:
        off = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        off = np.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    idx = (pp + off)[:, None] + np.arange(n)[None, :] - pad
    if a["exclude_outside"]:
        coeffs = np.where((idx < 0) | (idx >= in_w), 0.0, coeffs)
        s = coeffs.sum(-1, keepdims=True)
        coeffs = coeffs / np.where(s == 0, 1.0, s)
    idx = np.clip(idx, 0, in_w - 1)
    return idx, coeffs, extrap


class _UnknownDim(TypeError):
    """A dim the plan must resize is unknown at conversion time: plan at run time instead."""


def _known(shape: list[int | None], d: int) -> int:
    size = shape[d]
    if size is None:
        raise _UnknownDim(f"dim {d} is unknown at conversion time")
    return size


def _plan(shape: list[int | None], roi: Any, scales: Any, sizes: Any, axes: Any,
          a: dict[str, Any]) -> list[tuple]:
    """Per resized axis: (axis, source indices, weights, extrapolation mask or None).

    Raises:
        _UnknownDim: a dim in ``shape`` that must be resized is None (unknown).
    """
    r = len(shape)
    axes = list(range(r)) if axes is None else [ax % r for ax in axes]
    if roi is not None and len(roi) == 0:
        roi = None
    if scales is not None and len(scales) == 0:
        scales = None
    full_roi = None
    if roi is not None:
        full_roi = [0.0] * r + [1.0] * r
        for i, d in enumerate(axes):
            full_roi[d], full_roi[r + d] = roi[i], roi[len(axes) + i]
    sc = [1.0] * r
    out = list(shape)
    if sizes is not None and len(sizes):
        for i, d in enumerate(axes):
            out[d] = int(sizes[i])
            sc[d] = int(sizes[i]) / _known(shape, d)
        pol = a["keep_aspect_ratio_policy"]
        if pol != "stretch":
            s = min(sc[d] for d in axes) if pol == "not_larger" else max(sc[d] for d in axes)
            for d in axes:
                sc[d] = s
                out[d] = int(s * _known(shape, d) + 0.5)
    else:
        for i, d in enumerate(axes):
            sc[d] = float(scales[i])
            out[d] = shape[d] if sc[d] == 1.0 else int(sc[d] * _known(shape, d))
    plan = []
    for d in axes:
        ax_roi = None if full_roi is None else [full_roi[d], full_roi[d + r]]
        if sc[d] == 1.0 and out[d] == shape[d] and (
                ax_roi is None or (math.isclose(ax_roi[0], 0.0) and math.isclose(ax_roi[1], 1.0))):
            continue
        idx, coeffs, extrap = _axis_table(_known(shape, d), sc[d], _known(out, d), ax_roi, a)
        plan.append((d, torch.from_numpy(idx), torch.from_numpy(coeffs),
                     None if extrap is None else torch.from_numpy(extrap)))
    return plan


def _apply(x: torch.Tensor, plan: list[tuple], extrapolation: float) -> torch.Tensor:
    dt = x.dtype
    y = x.to(torch.float64)
    for d, idx, coeffs, extrap in plan:
        out_w, n = idx.shape
        idx, coeffs = idx.to(y.device), coeffs.to(y.device)
        extrap = None if extrap is None else extrap.to(y.device)
        g = y.index_select(d, idx.reshape(-1))
        shape = list(y.shape[:d]) + [out_w, n] + list(y.shape[d + 1:])
        g = g.reshape(shape)
        cshape = [1] * d + [out_w, n] + [1] * (y.dim() - d - 1)
        y = (g * coeffs.to(g.dtype).reshape(cshape)).sum(d + 1)
        if extrap is not None:
            mshape = [1] * d + [out_w] + [1] * (y.dim() - d - 1)
            y = torch.where(extrap.reshape(mshape), torch.tensor(extrapolation, dtype=y.dtype, device=y.device), y)
    if not dt.is_floating_point:
        info = torch.iinfo(dt)
        y = y.round().clamp(info.min, info.max)
    return y.to(dt)


def _resize_rt(x: torch.Tensor, roi: Any, scales: Any, sizes: Any, axes: Any,
               a: dict[str, Any]) -> torch.Tensor:
    def lst(v: Any) -> Any:
        return None if v is None else v.reshape(-1).tolist()
    plan = _plan([int(d) for d in x.shape], lst(roi), lst(scales), lst(sizes), axes, a)
    return _apply(x, plan, a["extrapolation_value"])


def _attrs(node: NodeInfo) -> dict[str, Any]:
    mode = node.a("mode", "nearest")
    ctm = node.a("coordinate_transformation_mode", "half_pixel")
    if node.opset < 11:
        ctm = "asymmetric"
    return {
        "mode": mode, "coordinate_transformation_mode": ctm,
        "nearest_mode": node.a("nearest_mode", "round_prefer_floor" if node.opset >= 11 else "floor"),
        "cubic_coeff_a": node.a("cubic_coeff_a", -0.75), "antialias": node.a("antialias", 0),
        "exclude_outside": node.a("exclude_outside", 0),
        "extrapolation_value": node.a("extrapolation_value", 0.0),
        "keep_aspect_ratio_policy": node.a("keep_aspect_ratio_policy", "stretch"),
    }


def _fast(x: torch.Tensor, sizes: list[int], scales: Any, mode: str, align: Any) -> torch.Tensor:
    if scales is not None:
        return F.interpolate(x, scale_factor=scales, mode=mode, align_corners=align,
                             recompute_scale_factor=False)
    return F.interpolate(x, size=sizes, mode=mode, align_corners=align)


def _resize(ctx: Ctx, node: NodeInfo, x: Value, roi: Value, scales: Value, sizes: Value) -> Value:
    a = _attrs(node)
    if a["mode"] not in ("nearest", "linear", "cubic"):
        raise NotSupported(f"mode {a['mode']}")
    axes = node.a("axes")
    shape = ctx.static_shape(x)
    r = len(shape)
    consts = [None if v is None else ctx.const(v, "roi/scales/sizes").reshape(-1).tolist()
              if isinstance(v, torch.Tensor) else "dyn" for v in (roi, scales, sizes)]
    if "dyn" in consts:
        return ctx.call(_resize_rt, x, roi, scales, sizes, axes, a)
    roi_l, sc_l, sz_l = consts
    try:
        # Unknown (None) dims are fine as long as they are not resized.
        plan = _plan(list(shape), roi_l, sc_l, sz_l, axes, a)
    except TypeError:  # _UnknownDim, or attribute values only run time can interpret
        return ctx.call(_resize_rt, x, roi, scales, sizes, axes, a)
    # Fast path: F.interpolate on the spatial dims when it computes the same thing.
    spatial_only = all(d >= 2 for d, *_ in plan) and 3 <= r <= 5
    ctm, mode = a["coordinate_transformation_mode"], a["mode"]
    torch_mode = {"linear": {3: "linear", 4: "bilinear", 5: "trilinear"}.get(r), "nearest": "nearest"}.get(mode)
    simple = (not a["antialias"] and not a["exclude_outside"] and spatial_only and torch_mode
              and a["keep_aspect_ratio_policy"] == "stretch"
              and ((mode == "linear" and ctm in ("half_pixel", "align_corners"))
                   or (mode == "nearest" and ctm == "asymmetric" and a["nearest_mode"] == "floor")))
    if simple and ctx.dtype(x).is_floating_point:
        out = list(shape)
        for (d, idx, _, _) in plan:
            out[d] = idx.shape[0]
        align = True if ctm == "align_corners" else (False if mode == "linear" else None)
        scale_list = None
        if sz_l is None and sc_l is not None and axes is None and ctm != "align_corners":
            scale_list = [float(s) for s in sc_l[2:]]
            if any(d is not None and int(s * d) != o for s, d, o in zip(scale_list, shape[2:], out[2:])):
                scale_list = None
        if scale_list is not None or None not in out[2:]:
            meta = None
            if None not in out[2:]:
                # Explicit meta: F.interpolate's Python code would specialize dynamic batch dims.
                m = ctx.meta(x)
                meta = ctx.empty_meta(list(m.shape[:2]) + out[2:], m.dtype)
            return ctx.call(_fast, x, out[2:], scale_list, torch_mode, align, _meta=meta)
    return ctx.call(_apply, x, plan, a["extrapolation_value"])


@op("Resize", since=11)
def resize(ctx: Ctx, node: NodeInfo, x: Value, roi: Value = None, scales: Value = None,
           sizes: Value = None) -> Value:
    return _resize(ctx, node, x, roi, scales, sizes)


@op("Resize", since=10, until=10)
def resize_v10(ctx: Ctx, node: NodeInfo, x: Value, scales: Value) -> Value:
    return _resize(ctx, node, x, None, scales, None)


@op("Upsample")
def upsample(ctx: Ctx, node: NodeInfo, x: Value, scales: Value = None) -> Value:
    if scales is None:
        scales = torch.tensor(node.a("scales"), dtype=torch.float32)
    return _resize(ctx, node, x, None, scales, None)
