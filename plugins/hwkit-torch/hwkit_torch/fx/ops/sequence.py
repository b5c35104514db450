"""Sequence and Optional ops.

A sequence is either a :class:`Seq` (its length and elements known at conversion time; ops
are resolved now) or an fx node whose runtime value is a Python list (meta ``SEQ``), e.g. a
graph input or a loop-carried sequence; ops on those run as small Python helpers. The marker
and the helpers shared with the control-flow ops live in ``_common``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from hwkit_torch.fx import dtypes
from hwkit_torch.fx.context import Ctx, NodeInfo, Seq, Value
from hwkit_torch.fx.ops._common import SEQ, as_runtime, is_rt_seq, module_node
from hwkit_torch.fx.ops.shape import norm_axis
from hwkit_torch.fx.registry import NotSupported, op


def _pos(ctx: Ctx, pos: Value, default: int) -> int | None:
    if pos is None:
        return default
    e = ctx.elems(pos)
    return None if e is None or not isinstance(e[0], int) else e[0]


@op("SequenceEmpty")
def sequence_empty(ctx: Ctx, node: NodeInfo) -> Value:
    return Seq()


@op("SequenceConstruct")
def sequence_construct(ctx: Ctx, node: NodeInfo, *xs: Value) -> Value:
    return Seq(xs)


def _insert(seq: list, t: torch.Tensor, pos: Any) -> list:
    out = list(seq)
    if pos is None:
        out.append(t)
    else:
        p = int(pos)
        out.insert(p if p >= 0 else p + len(out), t)
    return out


@op("SequenceInsert")
def sequence_insert(ctx: Ctx, node: NodeInfo, seq: Value, t: Value, pos: Value = None) -> Value:
    if isinstance(seq, Seq):
        p = _pos(ctx, pos, len(seq))
        if p is not None:
            out = Seq(seq)
            out.insert(p if p >= 0 else p + len(seq), t)
            return out
    return ctx.call(_insert, as_runtime(ctx, seq), t, pos, _meta=SEQ)


def _erase(seq: list, pos: Any) -> list:
    out = list(seq)
    out.pop(-1 if pos is None else int(pos))
    return out


@op("SequenceErase")
def sequence_erase(ctx: Ctx, node: NodeInfo, seq: Value, pos: Value = None) -> Value:
    if isinstance(seq, Seq):
        p = _pos(ctx, pos, -1)
        if p is not None:
            out = Seq(seq)
            out.pop(p)
            return out
    return ctx.call(_erase, as_runtime(ctx, seq), pos, _meta=SEQ)


def _at(seq: list, pos: Any) -> torch.Tensor:
    return seq[int(pos)]


@op("SequenceAt")
def sequence_at(ctx: Ctx, node: NodeInfo, seq: Value, pos: Value) -> Value:
    if isinstance(seq, Seq):
        p = _pos(ctx, pos, 0)
        if p is not None:
            return seq[p]
    return ctx.call(_at, as_runtime(ctx, seq), pos)


def _length(seq: list) -> torch.Tensor:
    return torch.tensor(len(seq), dtype=torch.int64, device=seq[0].device if seq else None)


@op("SequenceLength")
def sequence_length(ctx: Ctx, node: NodeInfo, seq: Value) -> Value:
    if isinstance(seq, Seq):
        return torch.tensor(len(seq), dtype=torch.int64)
    return ctx.call(_length, seq, _meta=ctx.empty_meta([], torch.int64))


def _concat_seq(seq: list, axis: int, new_axis: bool) -> torch.Tensor:
    return torch.stack(seq, axis) if new_axis else torch.cat(seq, axis)


@op("ConcatFromSequence")
def concat_from_sequence(ctx: Ctx, node: NodeInfo, seq: Value) -> Value:
    new_axis = bool(node.a("new_axis", 0))
    axis = node.a("axis")
    if isinstance(seq, Seq) and seq:
        r = ctx.rank(seq[0]) + (1 if new_axis else 0)
        return ctx.call(_concat_seq, list(seq), norm_axis(axis, r), new_axis)
    return ctx.call(_concat_seq, as_runtime(ctx, seq), axis, new_axis)


@op("SplitToSequence")
def split_to_sequence(ctx: Ctx, node: NodeInfo, x: Value, split: Value = None) -> Value:
    r = ctx.rank(x)
    axis = norm_axis(node.a("axis", 0), r)
    keep = node.a("keepdims", 1)
    dim = ctx.static_shape(x)[axis]
    if dim is None:
        raise NotSupported("SplitToSequence of a dynamic dim")
    if split is None:
        parts = ctx.call(torch.split, x, 1, dim=axis)
        return Seq(parts if keep else [ctx.call(torch.squeeze, p, axis) for p in parts])
    e = ctx.elems(split)
    if e is None:
        return ctx.call(_split_rt, x, split, axis, _meta=SEQ)
    sizes = [e[0]] * (dim // e[0]) + ([dim % e[0]] if dim % e[0] else []) if len(e) == 1 and ctx.rank(split) == 0 else e
    return Seq(ctx.call(torch.split, x, sizes, dim=axis))


def _split_rt(x: torch.Tensor, split: torch.Tensor, axis: int) -> list:
    s = split.reshape(-1).tolist()
    if split.dim() == 0:
        n = x.shape[axis]
        s = [s[0]] * (n // s[0]) + ([n % s[0]] if n % s[0] else [])
    return list(torch.split(x, [int(v) for v in s], dim=axis))


@op("SequenceMap")
def sequence_map(ctx: Ctx, node: NodeInfo, seq: Value, *extra: Value) -> Any:
    body = node.a("body")
    seqs = [seq] + [v for v in extra]
    n = None
    for s in seqs:
        if isinstance(s, Seq):
            n = len(s)
    if n is None or any(is_rt_seq(s) for s in seqs):
        return _sequence_map_rt(ctx, node, body, seqs)
    outs: list[list[Value]] = [[] for _ in body.output]
    for i in range(n):
        env = dict(node.env)
        for vi, s in zip(body.input, seqs):
            env[vi.name] = s[i] if isinstance(s, Seq) else s
        ctx.run_inline(body, env)
        for j, o in enumerate(body.output):
            outs[j].append(env[o.name])
    return [Seq(o) for o in outs]


def _run_seq_map(body: Any, is_seq: list[bool], n_out: int, *args: Any) -> tuple:
    ins, caps = args[: len(is_seq)], args[len(is_seq):]
    n = next(len(a) for a, s in zip(ins, is_seq) if s)
    outs: list[list[Any]] = [[] for _ in range(n_out)]
    for i in range(n):
        res = body(*[a[i] if s else a for a, s in zip(ins, is_seq)], *caps)
        for j in range(n_out):
            outs[j].append(res[j])
    return tuple(outs)


def _sequence_map_rt(ctx: Ctx, node: NodeInfo, body: Any, seqs: list[Value]) -> Any:
    """SequenceMap over sequences only known at run time: the body becomes a submodule."""
    metas = []
    is_seq = []
    for vi, s in zip(body.input, seqs):
        seq_like = isinstance(s, Seq) or is_rt_seq(s)
        is_seq.append(seq_like)
        if not seq_like:
            metas.append(ctx.meta(s))
            continue
        tt = vi.type.tensor_type
        if tt.elem_type not in dtypes.ONNX_TO_TORCH:
            raise NotSupported("SequenceMap body input of unknown type")
        dims = [None] * len(tt.shape.dim) if tt.HasField("shape") else None
        if dims is None:
            raise NotSupported("SequenceMap body input of unknown rank")
        metas.append(ctx.empty_meta(dims, dtypes.to_torch(tt.elem_type)))
    gm, caps = ctx.convert_subgraph(body, node.env, metas)
    args = [as_runtime(ctx, s) if isinstance(s, Seq) else s for s in seqs] + list(caps)
    n_out = len(body.output)
    return ctx.call_n(_run_seq_map, n_out, module_node(ctx, gm, "seq_map_body"), is_seq, n_out,
                      *args, _meta=[SEQ] * n_out)


# ------------------------------------------------------------------ Optional
@op("Optional")
def optional(ctx: Ctx, node: NodeInfo, x: Value = None) -> Value:
    return x


def _has(x: Any) -> torch.Tensor:
    return torch.tensor(x is not None)


@op("OptionalHasElement")
def optional_has_element(ctx: Ctx, node: NodeInfo, x: Value = None) -> Value:
    if x is None:
        return torch.tensor(False)
    if isinstance(x, fx.Node) and x.op == "placeholder":
        return ctx.call(_has, x, _meta=ctx.empty_meta([], torch.bool))
    return torch.tensor(True)


@op("OptionalGetElement")
def optional_get_element(ctx: Ctx, node: NodeInfo, x: Value) -> Value:
    return x
