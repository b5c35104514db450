"""If, Loop, Scan.

An If whose condition is known at conversion time is inlined. Otherwise each subgraph is
converted into its own GraphModule (a submodule of the result) and run by a small Python
helper; outer-scope values a subgraph reads are passed to it explicitly.
"""

from __future__ import annotations

from typing import Any

import onnx
import torch
import torch.fx as fx

from hwkit_torch.fx.context import Ctx, NodeInfo, Seq, Value, as_int
from hwkit_torch.fx.ops._common import SEQ, as_runtime, is_rt_seq, module_node
from hwkit_torch.fx.registry import NotSupported, op


def _meta_for(ctx: Ctx, v: Value, dynamic: bool) -> Any:
    if isinstance(v, Seq) or is_rt_seq(v):
        return SEQ
    m = ctx.meta(v)
    if dynamic:
        return ctx.empty_meta([None] * m.dim(), m.dtype)
    return ctx.empty_meta(list(m.shape), m.dtype)


def _rt(ctx: Ctx, v: Value) -> Value:
    return as_runtime(ctx, v) if isinstance(v, Seq) else v


# ------------------------------------------------------------------ If
def _run_if(cond: Any, then_m: Any, else_m: Any, n_then: int, *caps: Any) -> Any:
    if bool(cond.reshape(-1)[0]) if isinstance(cond, torch.Tensor) else cond:
        return then_m(*caps[:n_then])
    return else_m(*caps[n_then:])


@op("If")
def if_(ctx: Ctx, node: NodeInfo, cond: Value) -> Any:
    env = node.env
    then_g, else_g = node.a("then_branch"), node.a("else_branch")
    if isinstance(cond, torch.Tensor):
        g = then_g if bool(cond.reshape(-1)[0]) else else_g
        sub_env = dict(env)
        ctx.run_inline(g, sub_env)
        return [sub_env[o.name] for o in g.output]
    then_m, then_caps = ctx.convert_subgraph(then_g, env, [])
    else_m, else_caps = ctx.convert_subgraph(else_g, env, [])
    args = [_rt(ctx, v) for v in then_caps + else_caps]
    return ctx.call_n(_run_if, node.n_outputs, cond, module_node(ctx, then_m, "then"),
                      module_node(ctx, else_m, "else"), len(then_caps), *args)


# ------------------------------------------------------------------ Loop
def _run_loop(body: Any, n_carried: int, n_scan: int, trip: Any, cond: Any, *rest: Any) -> tuple:
    carried = list(rest[:n_carried])
    caps = rest[n_carried:]
    max_trip = None if trip is None else int(trip.reshape(-1)[0])
    go = True if cond is None else bool(cond.reshape(-1)[0])
    scans: list[list[Any]] = [[] for _ in range(n_scan)]
    dev = next((t.device for t in (trip, cond, *rest) if isinstance(t, torch.Tensor)), None)
    i = 0
    while (max_trip is None or i < max_trip) and go:
        outs = body(torch.tensor(i, dtype=torch.int64, device=dev), torch.tensor(go, device=dev), *carried, *caps)
        go = bool(outs[0].reshape(-1)[0])
        carried = list(outs[1:1 + n_carried])
        for j in range(n_scan):
            scans[j].append(outs[1 + n_carried + j])
        i += 1
    stacked = [torch.stack(s) if s else torch.empty(0, device=dev) for s in scans]
    return (*carried, *stacked)


@op("Loop")
def loop(ctx: Ctx, node: NodeInfo, trip: Value = None, cond: Value = None, *init: Value) -> Any:
    env = node.env
    body: onnx.GraphProto = node.a("body")
    n_carried = len(init)
    n_scan = len(body.output) - 1 - n_carried
    metas = [ctx.empty_meta([], torch.int64), ctx.empty_meta([], torch.bool)]
    try:
        carried_metas = [_meta_for(ctx, v, dynamic=False) for v in init]
    except NotSupported:
        carried_metas = [SEQ for _ in init]
    gm, caps = ctx.convert_subgraph(body, env, metas + carried_metas)
    dynamic = not _shapes_stable(gm, carried_metas)
    if dynamic:
        dyn = [_meta_for(ctx, v, dynamic=True) for v in init]
        gm, caps = ctx.convert_subgraph(body, env, metas + dyn)
    args = [_rt(ctx, v) for v in init] + [_rt(ctx, v) for v in caps]
    out_metas = _body_out_metas(ctx, gm, 1, n_carried, n_scan, dynamic)
    return ctx.call_n(_run_loop, node.n_outputs, module_node(ctx, gm, "loop_body"), n_carried,
                      n_scan, trip, cond, *args, _meta=out_metas)


def _shapes_stable(gm: fx.GraphModule, metas: list[Any]) -> bool:
    """True when every loop-carried output has the (static) shape its input had."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    vals = out.args[0][1:1 + len(metas)]
    for v, m in zip(vals, metas):
        if m is SEQ or not isinstance(v, fx.Node):
            continue
        vm = v.meta.get("val")
        if not isinstance(vm, torch.Tensor) or vm.dtype != m.dtype or vm.dim() != m.dim():
            return False
        if [as_int(d) for d in vm.shape] != [as_int(d) for d in m.shape]:
            return False
    return True


def _body_out_metas(ctx: Ctx, gm: fx.GraphModule, first: int, n_carried: int, n_scan: int,
                    carried_dynamic: bool) -> list[Any]:
    """Metas of Loop/Scan results from the body's outputs (scan outputs gain a leading dim)."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    vals = list(out.args[0])
    metas: list[Any] = []
    for i, v in enumerate(vals[first:first + n_carried + n_scan]):
        m = v.meta.get("val") if isinstance(v, fx.Node) else (v if isinstance(v, torch.Tensor) else None)
        if isinstance(v, list) or m is SEQ:
            metas.append(SEQ)
            continue
        if not isinstance(m, torch.Tensor):
            metas.append(None)
            continue
        dims = [as_int(d) for d in m.shape]
        if i < n_carried:
            metas.append(ctx.empty_meta([None] * len(dims) if carried_dynamic else dims, m.dtype))
        else:
            metas.append(ctx.empty_meta([None] + dims, m.dtype))
    return metas


# ------------------------------------------------------------------ Scan
def _run_scan(body: Any, n_state: int, n_in: int, n_out: int, in_axes: list[int],
              in_dirs: list[int], out_axes: list[int], out_dirs: list[int], *args: Any) -> tuple:
    states = list(args[:n_state])
    xs = args[n_state:n_state + n_in]
    caps = args[n_state + n_in:]
    steps = xs[0].shape[in_axes[0]]
    acc: list[list[Any]] = [[] for _ in range(n_out)]
    for t in range(steps):
        sl = [x.select(a, steps - 1 - t if d else t) for x, a, d in zip(xs, in_axes, in_dirs)]
        outs = body(*states, *sl, *caps)
        states = list(outs[:n_state])
        for j in range(n_out):
            acc[j].append(outs[n_state + j])
    res = []
    for j in range(n_out):
        seq = acc[j][::-1] if out_dirs[j] else acc[j]
        res.append(torch.stack(seq, out_axes[j]))
    return (*states, *res)


@op("Scan", since=9)
def scan(ctx: Ctx, node: NodeInfo, *inputs: Value) -> Any:
    env = node.env
    body: onnx.GraphProto = node.a("body")
    n_in = node.a("num_scan_inputs")
    n_state = len(inputs) - n_in
    n_out = len(body.output) - n_state
    in_axes = node.a("scan_input_axes") or [0] * n_in
    in_dirs = node.a("scan_input_directions") or [0] * n_in
    out_axes = node.a("scan_output_axes") or [0] * n_out
    out_dirs = node.a("scan_output_directions") or [0] * n_out
    in_axes = [a % ctx.rank(x) for a, x in zip(in_axes, inputs[n_state:])]
    metas = [_meta_for(ctx, v, dynamic=False) for v in inputs[:n_state]]
    for x, a in zip(inputs[n_state:], in_axes):
        m = ctx.meta(x)
        metas.append(ctx.empty_meta([d for i, d in enumerate(m.shape) if i != a], m.dtype))
    gm, caps = ctx.convert_subgraph(body, env, metas)
    args = [_rt(ctx, v) for v in inputs] + [_rt(ctx, v) for v in caps]
    out_metas = _body_out_metas(ctx, gm, 0, n_state, n_out, False)
    if any(a != 0 for a in out_axes):
        out_metas = out_metas[:n_state] + [None] * n_out
    return ctx.call_n(_run_scan, node.n_outputs, module_node(ctx, gm, "scan_body"), n_state,
                      n_in, n_out, in_axes, in_dirs, out_axes, out_dirs, *args, _meta=out_metas)
