"""Losses: NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from hwkit_torch.fx.context import Ctx, NodeInfo, Value
from hwkit_torch.fx.registry import op


def _nll(x: torch.Tensor, t: torch.Tensor, w: Any, ignore: Any, reduction: str) -> torch.Tensor:
    ii = -100 if ignore is None else ignore
    t = t.to(torch.int64)
    if ignore is not None:
        # torch rejects out-of-range ignored targets in some paths; park them on class 0.
        t = torch.where(t == ii, torch.full_like(t, ii), t)
    return F.nll_loss(x, t, weight=w, ignore_index=ii, reduction=reduction)


@op("NegativeLogLikelihoodLoss")
def nll_loss(ctx: Ctx, node: NodeInfo, x: Value, t: Value, w: Value = None) -> Value:
    return ctx.call(_nll, x, t, w, node.a("ignore_index"), node.a("reduction", "mean"))


def _sce(x: torch.Tensor, t: torch.Tensor, w: Any, ignore: Any, reduction: str) -> Any:
    lp = torch.log_softmax(x, 1)
    return _nll(lp, t, w, ignore, reduction), lp


@op("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy(ctx: Ctx, node: NodeInfo, x: Value, t: Value, w: Value = None) -> Any:
    loss, lp = ctx.call_n(_sce, 2, x, t, w, node.a("ignore_index"), node.a("reduction", "mean"))
    return [loss, lp][: node.n_outputs]
