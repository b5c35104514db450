"""Walks an ONNX graph and emits a ``torch.fx.GraphModule`` through the op handlers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx
import torch
import torch.fx as fx
from onnx import numpy_helper
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext

from hwkit.errors import CompileError, HwkitError, ModelError, UnsupportedOpError
import hwkit_torch.fx.ops  # noqa: F401  (importing the op modules registers their handlers)
from hwkit_torch.fx import dtypes
from hwkit_torch.fx.context import Ctx, NodeInfo, Seq, Value
from hwkit_torch.fx.fuse import fuse_linear
from hwkit_torch.fx.patterns import fuse_patterns
from hwkit_torch.fx.ops._common import SEQ
from hwkit_torch.fx.proto import attr_value, collect_types, tensor_from_proto
from hwkit_torch.fx.registry import NotSupported, lookup

_POISON = object()  # value of outputs of nodes that failed with NotSupported
_DYN_HINT = 8  # example size for dynamic dims while tracking shapes (never baked in)


class RefusedOpsError(UnsupportedOpError):
    """Ops whose handlers refused their attribute values or dtypes, with why, per op type."""

    def __init__(self, backend: str, ops: dict[str, list[str]], reasons: dict[str, str]) -> None:
        super().__init__(backend, ops)
        self.reasons = reasons

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, for isolated runs
        return type(self), (self.backend, self.ops, self.reasons)


def convert(model: onnx.ModelProto, *, backend: str = "torch") -> fx.GraphModule:
    """Convert ``model`` into a GraphModule taking the graph's real inputs positionally.

    Raises:
        UnsupportedOpError: some ops (all listed) or attribute values have no handler.
        ModelError: the model is invalid.
        CompileError: conversion failed for another reason.
    """
    if not isinstance(model, onnx.ModelProto):
        raise ModelError(f"expected an onnx.ModelProto, got {type(model).__name__}")
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    if "" not in opsets:
        opsets[""] = 1 if model.opset_import else 21
    _check_supported(model.graph, opsets, backend)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except (onnx.shape_inference.InferenceError, ValueError, RuntimeError):
        # Inference only adds type info (e.g. for > 2 GB models it cannot serialise); the
        # converter tracks shapes itself, so carry on without it.
        inferred = model
    types: dict[str, onnx.TypeProto] = {}
    collect_types(inferred.graph, types)
    fake_mode = FakeTensorMode(shape_env=ShapeEnv(), allow_non_fake_inputs=True)
    conv = _GraphConverter(fake_mode, opsets, types, backend)
    try:
        return conv.main(model.graph)
    except HwkitError:
        raise
    except Exception as e:  # noqa: BLE001 - a bug or torch error must still be a hwkit error
        raise CompileError(f"{backend}: conversion failed: {type(e).__name__}: {e}") from e


def _iter_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _iter_nodes(a.g)
            for g in a.graphs:
                yield from _iter_nodes(g)


def _check_supported(graph: onnx.GraphProto, opsets: dict[str, int], backend: str) -> None:
    missing: dict[str, list[str]] = defaultdict(list)
    for n in _iter_nodes(graph):
        dom = "" if n.domain == "ai.onnx" else n.domain
        if dom not in opsets:
            raise ModelError(f"node {n.name or n.op_type} uses domain '{dom}' not in opset_import")
        if lookup(dom, n.op_type, opsets[dom]) is None:
            key = n.op_type if not dom else f"{dom}.{n.op_type}"
            missing[key].append(n.name or n.output[0] if n.output else n.name)
    if missing:
        raise UnsupportedOpError(backend, dict(missing))


class _GraphConverter:
    def __init__(
        self,
        fake_mode: FakeTensorMode,
        opsets: dict[str, int],
        types: dict[str, onnx.TypeProto],
        backend: str,
    ) -> None:
        self.fake_mode = fake_mode
        self.opsets = opsets
        self.types = types
        self.backend = backend
        self.failed: dict[str, list[str]] = defaultdict(list)
        self.reasons: dict[str, str] = {}
        self.input_symbols: set[Any] = set()  # sympy symbols of dynamic graph-input dims

    # ------------------------------------------------------------ entry points
    def main(self, graph: onnx.GraphProto) -> fx.GraphModule:
        ctx = self._new_ctx(None)
        env: dict[str, Value] = {}
        init_names = {t.name for t in graph.initializer} | {
            s.values.name for s in graph.sparse_initializer
        }
        self._load_initializers(ctx, graph, env)
        for vi in graph.input:
            if vi.name in init_names:
                continue
            env[vi.name] = self._placeholder(ctx, vi.name, vi.type, dynamic_unknown=True)
        self.run_nodes(ctx, graph.node, env)
        if self.failed:
            raise RefusedOpsError(self.backend, dict(self.failed), dict(self.reasons))
        return self._finish(ctx, graph, env)

    def _new_ctx(self, parent: Ctx | None) -> Ctx:
        return Ctx(self.fake_mode, self.opsets, self, parent)

    def _load_initializers(self, ctx: Ctx, graph: onnx.GraphProto, env: dict[str, Value]) -> None:
        for t in graph.initializer:
            try:
                v = tensor_from_proto(t)
            except NotSupported:
                v = _POISON
            if isinstance(v, torch.Tensor):
                ctx.tensor_names[id(v)] = t.name
                ctx._keep.append(v)
            env[t.name] = v
        for s in graph.sparse_initializer:
            v = dtypes.numpy_to_torch(numpy_helper.to_array(s))
            ctx.tensor_names[id(v)] = s.values.name
            ctx._keep.append(v)
            env[s.values.name] = v

    def _placeholder(
        self, ctx: Ctx, name: str, tp: onnx.TypeProto, *, dynamic_unknown: bool,
        force_dynamic: bool = False,
    ) -> Value:
        node = ctx.graph.placeholder(_py_name(name, ctx))
        kind = tp.WhichOneof("value")
        if kind == "optional_type":
            tp = tp.optional_type.elem_type
            kind = tp.WhichOneof("value")
            node.meta["optional"] = True
        if kind == "sequence_type":
            node.meta["val"] = SEQ
            return node
        if kind != "tensor_type":
            raise UnsupportedOpError(self.backend, {f"input type {kind}": [name]})
        tt = tp.tensor_type
        if tt.elem_type not in dtypes.ONNX_TO_TORCH:
            raise UnsupportedOpError(
                self.backend, {f"input dtype {dtypes.name(tt.elem_type)}": [name]}
            )
        dt = dtypes.to_torch(tt.elem_type)
        if not tt.HasField("shape"):
            node.meta["val"] = None  # unknown rank: handlers that need it will refuse
            return node
        dims, dyn = [], []
        for d in tt.shape.dim:
            static = d.HasField("dim_value") and not force_dynamic
            dims.append(d.dim_value if static else _DYN_HINT)
            dyn.append(DimDynamic.STATIC if static else DimDynamic.DYNAMIC)
        from torch._dynamo.source import ConstantSource

        node.meta["val"] = self.fake_mode.from_tensor(
            torch.empty(dims, dtype=dt),
            symbolic_context=StatelessSymbolicContext(
                dynamic_sizes=dyn, constraint_sizes=[None] * len(dims)
            ),
            source=ConstantSource(f"{name}_{id(node)}"),
        )
        for d in node.meta["val"].shape:
            if isinstance(d, torch.SymInt):
                self.input_symbols |= d.node.expr.free_symbols
        return node

    # ------------------------------------------------------------ graph walk
    def run_nodes(
        self, ctx: Ctx, nodes: Any, env: dict[str, Value], graph: onnx.GraphProto | None = None
    ) -> None:
        if graph is not None:
            self._load_initializers(ctx, graph, env)
        for node in nodes:
            self._run_node(ctx, node, env)

    def _run_node(self, ctx: Ctx, node: onnx.NodeProto, env: dict[str, Value]) -> None:
        label = node.name or (node.output[0] if node.output else node.op_type)
        ins: list[Value] = []
        for n in node.input:
            if n == "":
                ins.append(None)
            elif n in env:
                ins.append(env[n])
            else:
                raise ModelError(f"node {label} ({node.op_type}) uses undefined value '{n}'")
        if any(v is _POISON for v in ins):
            self._set_outputs(ctx, node, env, [_POISON] * len(node.output))
            return
        dom = "" if node.domain == "ai.onnx" else node.domain
        opset = self.opsets[dom]
        handler = lookup(dom, node.op_type, opset)
        assert handler is not None  # checked up front
        info = NodeInfo(
            proto=node,
            opset=opset,
            attrs={a.name: attr_value(a) for a in node.attribute},
            name=label,
            op_type=node.op_type,
            n_outputs=len(node.output),
            outputs=list(node.output),
            input_types=[self._elem_type(n) for n in node.input],
            output_types=[self._elem_type(n) for n in node.output],
            env=env,  # subgraph handlers need the scope
        )
        fixed_before = self._specialized_dims(ctx)
        try:
            out = handler(ctx, info, *ins)
        except NotSupported as e:
            key = node.op_type if not dom else f"{dom}.{node.op_type}"
            self.failed[key].append(label)
            self.reasons.setdefault(key, str(e))
            self._set_outputs(ctx, node, env, [_POISON] * len(node.output))
            return
        except HwkitError:
            raise
        except Exception as e:  # noqa: BLE001
            raise CompileError(
                f"{self.backend}: cannot convert node {label} ({node.op_type}): "
                f"{type(e).__name__}: {e}"
            ) from e
        if self._specialized_dims(ctx) != fixed_before:
            # Shape tracking used an example size for a dynamic input dim and this node made
            # it a constant: the graph would silently be wrong for every other size.
            raise CompileError(
                f"{self.backend}: node {label} ({node.op_type}) fixes a dynamic input dimension "
                "to a constant during conversion; give the model static input shapes"
            )
        if isinstance(out, Seq) or not isinstance(out, (list, tuple)):
            out = [out]
        out = list(out) + [None] * (len(node.output) - len(out))
        self._set_outputs(ctx, node, env, out)

    def _specialized_dims(self, ctx: Ctx) -> int:
        """How many dynamic input dims the shape environment has replaced by constants."""
        return sum(1 for k, v in ctx.shape_env.replacements.items()
                   if k in self.input_symbols and getattr(v, "is_number", False))

    def _elem_type(self, name: str) -> int | None:
        tp = self.types.get(name)
        if tp is None or tp.WhichOneof("value") != "tensor_type":
            return None
        return tp.tensor_type.elem_type or None

    def _set_outputs(self, ctx: Ctx, node: onnx.NodeProto, env: dict[str, Value], outs: list) -> None:
        for name, v in zip(node.output, outs):
            if not name:
                continue
            if v is not _POISON and v is not None and not isinstance(v, Seq):
                v = self._fix_type(ctx, name, v)
            env[name] = v

    def _fix_type(self, ctx: Ctx, name: str, v: Value) -> Value:
        """Fill unknown meta from ONNX types and cast when torch promoted differently."""
        tp = self.types.get(name)
        want = None
        if tp is not None and tp.WhichOneof("value") == "tensor_type":
            want = dtypes.ONNX_TO_TORCH.get(tp.tensor_type.elem_type)
        if isinstance(v, fx.Node) and v.meta.get("val") is None and tp is not None:
            if want is not None and tp.tensor_type.HasField("shape"):
                dims = [
                    d.dim_value if d.HasField("dim_value") else None for d in tp.tensor_type.shape.dim
                ]
                v.meta["val"] = ctx.empty_meta(dims, want)
        if isinstance(v, (fx.Node, torch.Tensor)) and want is not None:
            m = v.meta.get("val") if isinstance(v, fx.Node) else v
            if m is not None and isinstance(m, torch.Tensor) and m.dtype != want:
                v = ctx.cast(v, want)
        return v

    def _finish(self, ctx: Ctx, graph: onnx.GraphProto, env: dict[str, Value]) -> fx.GraphModule:
        outs = []
        for o in graph.output:
            if o.name not in env:
                raise ModelError(f"graph output '{o.name}' is never produced")
            outs.append(self._as_output(ctx, env[o.name]))
        ctx.graph.output(tuple(outs))
        ctx.graph.eliminate_dead_code()
        ctx.graph.lint()
        gm = fx.GraphModule(ctx.root, ctx.graph)
        if ctx.parent is None:  # the main graph; subgraphs are small and called from it
            fuse_linear(gm)
            fuse_patterns(gm)
        return gm

    def _as_output(self, ctx: Ctx, v: Value) -> Any:
        if isinstance(v, torch.Tensor):
            return ctx.attr(v)
        if isinstance(v, Seq):
            return [self._as_output(ctx, x) for x in v]
        if isinstance(v, np.ndarray):
            raise UnsupportedOpError(self.backend, {"string tensors": ["graph output"]})
        return v

    # ------------------------------------------------------------ subgraphs
    def subgraph(
        self, parent: Ctx, graph: onnx.GraphProto, env: dict[str, Value], input_metas: list[Any]
    ) -> tuple[fx.GraphModule, list[Value]]:
        """Convert ``graph`` into its own GraphModule.

        Returns the module and the outer values it captures; call it as
        ``gm(*graph_inputs, *captured)``.
        """
        ctx = self._new_ctx(parent)
        sub_env: dict[str, Value] = {}
        for vi, m in zip(graph.input, input_metas):
            node = ctx.graph.placeholder(_py_name(vi.name, ctx))
            node.meta["val"] = m
            sub_env[vi.name] = node
        self._load_initializers(ctx, graph, sub_env)
        captured: list[Value] = []
        for name in _outer_names(graph):
            if name in sub_env or name not in env:
                continue
            v = env[name]
            if isinstance(v, fx.Node):
                node = ctx.graph.placeholder(_py_name(name, ctx))
                node.meta["val"] = v.meta.get("val")
                sub_env[name] = node
                captured.append(v)
            else:
                sub_env[name] = v
        self.run_nodes(ctx, graph.node, sub_env)
        if self.failed:
            raise NotSupported("subgraph has unsupported nodes")
        outs = [self._as_output(ctx, sub_env[o.name]) for o in graph.output]
        ctx.graph.output(tuple(outs))
        ctx.graph.eliminate_dead_code()
        gm = fx.GraphModule(ctx.root, ctx.graph)
        return gm, captured


def _outer_names(graph: onnx.GraphProto) -> list[str]:
    """Names a subgraph (or its nested subgraphs) reads from enclosing scopes, in order."""
    seen: list[str] = []
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}

    def visit(g: onnx.GraphProto, local: set[str]) -> None:
        local = set(local) | {i.name for i in g.input} | {t.name for t in g.initializer}
        for n in g.node:
            for i in n.input:
                if i and i not in local and i not in seen:
                    seen.append(i)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g, local)
                for sg in a.graphs:
                    visit(sg, local)
            local |= set(n.output)

    visit(graph, defined)
    return seen


def _py_name(name: str, ctx: Ctx) -> str:
    import re

    s = re.sub(r"\W", "_", name) or "x"
    if s[0].isdigit():
        s = "x_" + s
    return s
