"""NonMaxSuppression, training optimisers (ai.onnx.preview.training), small ai.onnx.ml ops."""

from __future__ import annotations

from typing import Any

import torch

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.registry import NotSupported, op

_TRAINING = "ai.onnx.preview.training"
_ML = "ai.onnx.ml"


def _scalar(v: Any, default: float) -> float:
    if v is None or v.numel() == 0:
        return default
    return float(v.reshape(-1)[0])


def _nms(boxes: torch.Tensor, scores: torch.Tensor, max_out: Any, iou_t: Any, score_t: Any,
         center: int) -> torch.Tensor:
    k = int(max(_scalar(max_out, 0), 0))
    iou_thr = _scalar(iou_t, 0.0)
    b = boxes.to(torch.float64)
    if center:
        x0, x1 = b[..., 0] - b[..., 2] / 2, b[..., 0] + b[..., 2] / 2
        y0, y1 = b[..., 1] - b[..., 3] / 2, b[..., 1] + b[..., 3] / 2
    else:
        y0, y1 = torch.minimum(b[..., 0], b[..., 2]), torch.maximum(b[..., 0], b[..., 2])
        x0, x1 = torch.minimum(b[..., 1], b[..., 3]), torch.maximum(b[..., 1], b[..., 3])
    area = (x1 - x0) * (y1 - y0)
    out: list[list[int]] = []
    for n in range(boxes.shape[0]):
        iw = (torch.minimum(x1[n][:, None], x1[n][None]) - torch.maximum(x0[n][:, None], x0[n][None]))
        ih = (torch.minimum(y1[n][:, None], y1[n][None]) - torch.maximum(y0[n][:, None], y0[n][None]))
        inter = iw.clamp(min=0) * ih.clamp(min=0)
        union = area[n][:, None] + area[n][None] - inter
        valid = (iw > 0) & (ih > 0) & (area[n][:, None] > 0) & (area[n][None] > 0) & (union > 0)
        iou = torch.where(valid, inter / torch.where(union > 0, union, torch.ones_like(union)), torch.zeros_like(inter))
        for c in range(scores.shape[1]):
            s = scores[n, c]
            cand = list(range(s.shape[0]))
            if score_t is not None and score_t.numel():
                cand = [i for i in cand if float(s[i]) > _scalar(score_t, 0.0)]
            # highest score first; equal scores: lower index first
            cand.sort(key=lambda i: (-float(s[i]), i))
            chosen: list[int] = []
            for i in cand:
                if len(chosen) >= k:
                    break
                if all(not float(iou[i, j]) > iou_thr for j in chosen):
                    chosen.append(i)
                    out.append([n, c, i])
    return torch.tensor(out, dtype=torch.int64, device=boxes.device).reshape(-1, 3)


@op("NonMaxSuppression")
def non_max_suppression(ctx: Ctx, node: NodeInfo, boxes: Value, scores: Value, max_out: Value = None,
                        iou_t: Value = None, score_t: Value = None) -> Value:
    return ctx.call(_nms, boxes, scores, max_out, iou_t, score_t, node.a("center_point_box", 0),
                    _meta=ctx.empty_meta([None, 3], torch.int64))


# ------------------------------------------------------------------ training optimisers
def _adagrad(r: torch.Tensor, t: torch.Tensor, *xs: torch.Tensor, decay: float, eps: float,
             norm: float) -> tuple:
    n = len(xs) // 3
    lr = r / (1 + t * decay)
    outs_x, outs_h = [], []
    for x, g, h in zip(xs[:n], xs[n:2 * n], xs[2 * n:]):
        gr = norm * x + g
        hn = h + gr * gr
        outs_x.append((x - lr * gr / (torch.sqrt(hn) + eps)).to(x.dtype))
        outs_h.append(hn.to(h.dtype))
    return (*outs_x, *outs_h)


@op("Adagrad", domain=_TRAINING)
def adagrad(ctx: Ctx, node: NodeInfo, r: Value, t: Value, *xs: Value) -> Any:
    return ctx.call_n(_adagrad, node.n_outputs, r, t, *xs, decay=node.a("decay_factor", 0.0),
                      eps=node.a("epsilon", 0.0), norm=node.a("norm_coefficient", 0.0))


def _adam(r: torch.Tensor, t: torch.Tensor, *xs: torch.Tensor, alpha: float, beta: float, eps: float,
          norm: float, post: float) -> tuple:
    n = len(xs) // 4
    ox, ov, oh = [], [], []
    tt = float(t)
    lr = r * (1 - beta**tt) ** 0.5 / (1 - alpha**tt) if tt > 0 else r
    for x, g, v, h in zip(xs[:n], xs[n:2 * n], xs[2 * n:3 * n], xs[3 * n:]):
        gr = norm * x + g
        vn = alpha * v + (1 - alpha) * gr
        hn = beta * h + (1 - beta) * gr * gr
        xn = (1 - post) * (x - lr * (vn / (torch.sqrt(hn) + eps)))
        ox.append(xn.to(x.dtype))
        ov.append(vn.to(v.dtype))
        oh.append(hn.to(h.dtype))
    return (*ox, *ov, *oh)


@op("Adam", domain=_TRAINING)
def adam(ctx: Ctx, node: NodeInfo, r: Value, t: Value, *xs: Value) -> Any:
    return ctx.call_n(_adam, node.n_outputs, r, t, *xs, alpha=node.a("alpha", 0.9),
                      beta=node.a("beta", 0.999), eps=node.a("epsilon", 0.0),
                      norm=node.a("norm_coefficient", 0.0), post=node.a("norm_coefficient_post", 0.0))


def _momentum(r: torch.Tensor, t: torch.Tensor, *xs: torch.Tensor, alpha: float, beta: float,
              norm: float, nesterov: bool) -> tuple:
    n = len(xs) // 3
    ox, ov = [], []
    b = beta if float(t) > 0 else 1.0
    for x, g, v in zip(xs[:n], xs[n:2 * n], xs[2 * n:]):
        gr = norm * x + g
        vn = alpha * v + b * gr
        xn = x - r * (gr + alpha * vn) if nesterov else x - r * vn
        ox.append(xn.to(x.dtype))
        ov.append(vn.to(v.dtype))
    return (*ox, *ov)


@op("Momentum", domain=_TRAINING)
def momentum(ctx: Ctx, node: NodeInfo, r: Value, t: Value, *xs: Value) -> Any:
    return ctx.call_n(_momentum, node.n_outputs, r, t, *xs, alpha=node.a("alpha"),
                      beta=node.a("beta"), norm=node.a("norm_coefficient"),
                      nesterov=node.a("mode", "standard") == "nesterov")


# ------------------------------------------------------------------ ai.onnx.ml
def _binarizer(x: torch.Tensor, threshold: float) -> torch.Tensor:
    return (x > threshold).to(x.dtype)


@op("Binarizer", domain=_ML)
def binarizer(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return ctx.call(_binarizer, x, node.a("threshold", 0.0))


def _array_feature_extractor(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return x.index_select(x.dim() - 1, idx.reshape(-1).to(torch.int64))


@op("ArrayFeatureExtractor", domain=_ML)
def array_feature_extractor(ctx: Ctx, node: NodeInfo, x: Value, idx: Value) -> Value:
    return ctx.call(_array_feature_extractor, x, idx)


def _tfidf(x: torch.Tensor, min_n: int, max_n: int, max_skip: int, mode: str, counts: list[int],
           indexes: list[int], pool: list[int], weights: list[float] | None) -> torch.Tensor:
    grams: dict[tuple[int, ...], int] = {}
    bounds = list(counts) + [len(pool)]
    k = 0
    for size, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]), start=1):
        for s in range(a, b, size):
            grams[tuple(pool[s:s + size])] = indexes[k]
            k += 1
    out_size = max(indexes) + 1
    rows = x.reshape(1, -1) if x.dim() <= 1 else x
    freq = torch.zeros(rows.shape[0], out_size, dtype=torch.float64)
    for r, row in enumerate(rows.tolist()):
        for n in range(min_n, max_n + 1):
            # Unigrams do not depend on the skip distance: count them once.
            for skip in range(1, (1 if n == 1 else max_skip + 1) + 1):
                for i in range(len(row)):
                    last = i + skip * (n - 1)
                    if last >= len(row):
                        break
                    idx = grams.get(tuple(row[i:last + 1:skip]))
                    if idx is not None:
                        freq[r, idx] += 1
    if mode == "IDF":
        freq = (freq > 0).to(freq.dtype) * (torch.tensor(weights, dtype=freq.dtype) if weights else 1.0)
    elif mode == "TFIDF" and weights:
        freq = freq * torch.tensor(weights, dtype=freq.dtype)
    y = freq.to(torch.float32).to(x.device)
    return y.reshape(-1) if x.dim() <= 1 else y


@op("TfIdfVectorizer")
def tfidf_vectorizer(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    if node.a("pool_strings"):
        raise NotSupported("string pools")
    return ctx.call(_tfidf, x, node.a("min_gram_length"), node.a("max_gram_length"),
                    node.a("max_skip_count"), node.a("mode"), list(node.a("ngram_counts")),
                    list(node.a("ngram_indexes")), list(node.a("pool_int64s") or []),
                    list(node.a("weights") or []) or None)
