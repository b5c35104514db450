"""What the sequence ops and the control-flow ops share: the runtime-sequence marker and
helpers that build sequence values and subgraph submodules.

A sequence is either a :class:`~hwkit_torch.fx.context.Seq` (known at conversion time) or an fx
node whose runtime value is a Python list; such nodes carry the meta ``SEQ``.
"""

from __future__ import annotations

from typing import Any

import torch.fx as fx

from hwkit_torch.fx.context import Ctx, Seq, Value


class _SeqMeta:
    """Marker meta for fx nodes that carry a Python list at run time."""

    def __repr__(self) -> str:
        return "SEQ"


SEQ = _SeqMeta()


def is_rt_seq(v: Value) -> bool:
    """True for an fx node whose runtime value is a Python list (a sequence known only then)."""
    return isinstance(v, fx.Node) and (v.meta.get("val") is SEQ or v.meta.get("onnx_kind") == "sequence_type")


def _list(*xs: Any) -> list:
    return list(xs)


def as_runtime(ctx: Ctx, s: Value) -> Value:
    """A conversion-time :class:`Seq` as an fx node building the list at run time; others as they are."""
    if isinstance(s, Seq):
        if not any(isinstance(x, fx.Node) for x in s):
            return ctx.call(_list, *[ctx.attr(x) for x in s], _meta=SEQ) if s else _empty_rt(ctx)
        return ctx.call(_list, *s, _meta=SEQ)
    return s


def _empty_rt(ctx: Ctx) -> Value:
    n = ctx.graph.call_function(_list, ())
    n.meta["val"] = SEQ
    return n


def module_node(ctx: Ctx, gm: fx.GraphModule, base: str) -> fx.Node:
    """Add ``gm`` (a converted subgraph) as a submodule of the result; the node referring to it."""
    ctx.n_sub += 1
    name = f"{base}_{ctx.n_sub}"
    ctx.root.add_module(name, gm)
    n = ctx.graph.get_attr(name)
    n.meta["val"] = None
    return n
