"""Emission context: builds fx nodes, folds constants and tracks shapes with fake tensors.

Handlers never touch ``torch.fx`` directly. They call :meth:`Ctx.call` / :meth:`Ctx.method`;
when every argument is known at conversion time (a real tensor or Python value) the call is
executed right away (constant folding), otherwise an fx node is created and its output is
propagated through a :class:`FakeTensorMode` with a :class:`ShapeEnv`, so that handlers can
ask for dtypes and shapes, and dynamic dimensions stay symbolic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import onnx
import torch
import torch.fx as fx
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import ShapeEnv

from hwkit_torch.fx.registry import NotSupported


class Seq(list):
    """A sequence value whose length is known at conversion time (elements are Values)."""


Value = Any  # torch.Tensor (constant) | fx.Node (runtime tensor) | Seq | None


@dataclass
class NodeInfo:
    """What a handler needs to know about the ONNX node it converts."""

    proto: onnx.NodeProto
    opset: int
    attrs: dict[str, Any]
    name: str
    op_type: str
    n_outputs: int
    outputs: list[str] = field(default_factory=list)
    input_types: list[int | None] = field(default_factory=list)  # ONNX elem types, if known
    output_types: list[int | None] = field(default_factory=list)
    env: dict[str, Value] = field(default_factory=dict)  # the values in scope, for subgraph ops

    def a(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


class GraphWalker(Protocol):
    """The part of the converter that ops with subgraphs (If, Loop, Scan, ...) call back into."""

    def subgraph(self, parent: Ctx, graph: onnx.GraphProto, env: dict[str, Value],
                 input_metas: list[Any]) -> tuple[fx.GraphModule, list[Value]]: ...

    def run_nodes(self, ctx: Ctx, nodes: Any, env: dict[str, Value],
                  graph: onnx.GraphProto | None = None) -> None: ...


class Ctx:
    """State for emitting one fx graph (the main graph or a subgraph)."""

    def __init__(
        self,
        fake_mode: FakeTensorMode,
        opsets: dict[str, int],
        walker: GraphWalker,
        parent: Ctx | None = None,
    ) -> None:
        if fake_mode.shape_env is None:  # dynamic dims are tracked in it
            raise ValueError("Ctx needs a FakeTensorMode with a ShapeEnv")
        self.graph = fx.Graph()
        self.root = torch.nn.Module()
        self.fake_mode = fake_mode
        self.shape_env: ShapeEnv = fake_mode.shape_env
        self.walker = walker
        self.opsets = opsets
        self.parent = parent
        self.tensor_names: dict[int, str] = {}  # id(const tensor) -> preferred buffer name
        self._attr_nodes: dict[int, fx.Node] = {}
        self._keep: list[torch.Tensor] = []  # keeps ids in _attr_nodes stable
        self._fake_consts: dict[int, torch.Tensor] = {}
        self._size_nodes: dict[tuple[fx.Node, int], fx.Node] = {}
        # 1-D/0-D int64 fx nodes whose element values are known symbolically (from Shape).
        self.sym_elems: dict[fx.Node, tuple[list[Any], bool]] = {}
        self.n_sub = 0
        self._device_node: fx.Node | None = None

    # ---------------------------------------------------------------- subgraphs
    def convert_subgraph(self, graph: onnx.GraphProto, env: dict[str, Value],
                         input_metas: list[Any]) -> tuple[fx.GraphModule, list[Value]]:
        """``graph`` as its own GraphModule, and the outer values it captures: call it as
        ``gm(*graph_inputs, *captured)``."""
        return self.walker.subgraph(self, graph, env, input_metas)

    def run_inline(self, graph: onnx.GraphProto, env: dict[str, Value]) -> None:
        """Emit ``graph``'s nodes into this graph, reading and writing ``env``."""
        self.walker.run_nodes(self, graph.node, env, graph=graph)

    # ---------------------------------------------------------------- basic queries
    @staticmethod
    def is_const(v: Value) -> bool:
        return isinstance(v, torch.Tensor)

    def meta(self, v: Value) -> Any:
        if isinstance(v, fx.Node):
            m = v.meta.get("val")
            if m is None:
                raise NotSupported(f"unknown type/shape of intermediate value {v.name}")
            return m
        return v

    def dtype(self, v: Value) -> torch.dtype:
        return self.meta(v).dtype

    def rank(self, v: Value) -> int:
        return self.meta(v).dim()

    def static_shape(self, v: Value) -> list[int | None]:
        """Shape with None for dimensions unknown at conversion time."""
        return [as_int(d) for d in self.meta(v).shape]

    def size(self, v: Value, i: int) -> int | fx.Node:
        """Size of dim ``i``: an int when static, else an fx node computing ``v.size(i)``."""
        m = self.meta(v)
        i = i % max(m.dim(), 1)
        d = as_int(m.shape[i])
        if d is not None:
            return d
        key = (v, i)
        if key not in self._size_nodes:
            n = self.graph.call_method("size", (v, i))
            n.meta["val"] = m.shape[i]
            self._size_nodes[key] = n
        return self._size_nodes[key]

    def sizes(self, v: Value) -> list[int | fx.Node]:
        return [self.size(v, i) for i in range(self.rank(v))]

    # ---------------------------------------------------------------- emission
    def call(self, fn: Callable[..., Any], *args: Any, _meta: Any = None, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``: folded now if all inputs are known, else an fx node."""
        return self._emit("call_function", fn, args, kwargs, _meta)

    def call_n(self, fn: Callable[..., Any], n: int, *args: Any, **kwargs: Any) -> list[Any]:
        """Like :meth:`call` for a function returning ``n`` values (always a list of n)."""
        out = self.call(fn, *args, **kwargs)
        if isinstance(out, fx.Node) and isinstance(out.meta.get("val"), (list, tuple)):
            metas = list(out.meta["val"])
            out.meta["val"] = None
            outs = []
            for i in range(n):
                g = self.graph.call_function(_getitem, (out, i))
                g.meta["val"] = metas[i] if i < len(metas) else None
                outs.append(g)
            return outs
        if isinstance(out, fx.Node):  # meta unknown: split by position
            outs = []
            for i in range(n):
                g = self.graph.call_function(_getitem, (out, i))
                g.meta["val"] = None
                outs.append(g)
            return outs
        return list(out)

    def method(self, name: str, self_: Value, *args: Any, _meta: Any = None, **kwargs: Any) -> Any:
        """``self_.name(*args, **kwargs)``, folded or emitted like :meth:`call`."""
        return self._emit("call_method", name, (self_, *args), kwargs, _meta)

    def _emit(self, kind: str, target: Any, args: tuple, kwargs: dict, meta: Any) -> Any:
        leaves: list[Any] = []
        _map(leaves.append, (args, kwargs))
        if not any(isinstance(x, fx.Node) for x in leaves):
            with torch.no_grad():
                if kind == "call_function":
                    return target(*args, **kwargs)
                return getattr(args[0], target)(*args[1:], **kwargs)
        fargs, fkwargs = _map(self._as_arg, (args, kwargs))
        node = self.graph.create_node(kind, target, tuple(fargs), dict(fkwargs))
        explicit_list = isinstance(meta, list)
        if meta is None:
            meta = self._fake_run(kind, target, args, kwargs)
        node.meta["val"] = meta
        if explicit_list:
            return node
        if isinstance(meta, (tuple, list)) and not isinstance(meta, torch.Size):
            # Multi-output call: hand out one getitem node per element.
            outs = []
            for i, m in enumerate(meta):
                g = self.graph.call_function(_getitem, (node, i))
                g.meta["val"] = m
                outs.append(g)
            return outs
        return node

    def _fake_run(self, kind: str, target: Any, args: tuple, kwargs: dict) -> Any:
        fargs, fkwargs = _map(self._as_fake, (args, kwargs))
        try:
            with self.fake_mode, torch.no_grad():
                if kind == "call_function":
                    return target(*fargs, **fkwargs)
                return getattr(fargs[0], target)(*fargs[1:], **fkwargs)
        except Exception:  # noqa: BLE001 - unknown meta is allowed; filled from ONNX types later
            return None

    def _as_arg(self, x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return self.attr(x)
        return x

    def _as_fake(self, x: Any) -> Any:
        if isinstance(x, fx.Node):
            return x.meta.get("val")
        if isinstance(x, torch.Tensor):
            k = id(x)
            if k not in self._fake_consts:
                self._keep.append(x)
                self._fake_consts[k] = self.fake_mode.from_tensor(x, static_shapes=True)
            return self._fake_consts[k]
        return x

    def attr(self, t: torch.Tensor) -> fx.Node:
        """A get_attr node for constant ``t``, registered as a buffer of the root module."""
        k = id(t)
        if k in self._attr_nodes:
            return self._attr_nodes[k]
        base = _sanitize(self.tensor_names.get(k, "const"))
        name, i = base, 0
        while hasattr(self.root, name):
            i += 1
            name = f"{base}_{i}"
        self.root.register_buffer(name, t)
        self._keep.append(t)
        with self.graph.inserting_before(_first_non_placeholder(self.graph)):
            n = self.graph.get_attr(name)
        n.meta["val"] = self._as_fake(t)
        self._attr_nodes[k] = n
        return n

    def device(self) -> fx.Node:
        """An fx node giving the module's device at run time (for tensors made from nothing).

        A zero-size buffer is registered on the root so that ``module.to(device)`` moves it.
        """
        if self._device_node is None:
            self.root.register_buffer("_device_anchor", torch.empty(0))
            with self.graph.inserting_before(_first_non_placeholder(self.graph)):
                anchor = self.graph.get_attr("_device_anchor")
                anchor.meta["val"] = self._as_fake(self.root._device_anchor)
                dev = self.graph.call_function(getattr, (anchor, "device"))
            dev.meta["val"] = torch.device("cpu")
            self._device_node = dev
        return self._device_node

    def empty_meta(self, shape: list[Any], dtype: torch.dtype) -> torch.Tensor:
        """A fake tensor; ``None`` dims become fresh unknown sizes."""
        with self.fake_mode:
            dims = [self.shape_env.create_unbacked_symint() if d is None else d for d in shape]
            return torch.empty(dims, dtype=dtype)

    # ---------------------------------------------------------------- common helpers
    def cast(self, v: Value, dtype: torch.dtype) -> Value:
        if self.dtype(v) == dtype:
            return v
        return self.method("to", v, dtype)

    def tensor(self, data: Any, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor(data, dtype=dtype)

    def sym_tensor(self, elems: list[Any], scalar: bool = False) -> Value:
        """An int64 tensor from ints and symbolic size nodes (remembering the elements)."""
        if all(isinstance(e, int) for e in elems):
            t = torch.tensor(elems, dtype=torch.int64)
            return t.reshape(()) if scalar else t
        vals = [e.meta["val"] if isinstance(e, fx.Node) else e for e in elems]
        meta = self.empty_meta([] if scalar else [len(elems)], torch.int64)
        arg = elems[0] if scalar else list(elems)
        n = self.call(torch.tensor, arg, dtype=torch.int64, device=self.device(), _meta=meta)
        del vals
        self.sym_elems[n] = (list(elems), scalar)
        return n

    def elems(self, v: Value) -> list[Any] | None:
        """Element values (ints or size nodes) of a small int tensor, when known."""
        if isinstance(v, torch.Tensor):
            if v.dtype.is_floating_point or v.dim() > 1:
                return None
            return [int(x) for x in v.reshape(-1).tolist()]
        if isinstance(v, fx.Node) and v in self.sym_elems:
            return list(self.sym_elems[v][0])
        return None

    def size_elems(self, v: Value) -> list[Any] | None:
        """The elements of a tensor built by ``sym_tensor`` from sizes (some symbolic); else None."""
        if isinstance(v, fx.Node) and v in self.sym_elems:
            return list(self.sym_elems[v][0])
        return None

    def ints(self, v: Value) -> list[Any] | None:
        """A shape-like input as a list of ints / size nodes; None when only known at run time."""
        return self.elems(v)

    def const_ints(self, v: Value, what: str = "input") -> list[int]:
        """A shape-like input that must be known at conversion time."""
        e = self.elems(v)
        if e is None or not all(isinstance(x, int) for x in e):
            raise NotSupported(f"{what} must be a constant")
        return e

    def const(self, v: Value, what: str = "input") -> torch.Tensor:
        if not isinstance(v, torch.Tensor):
            raise NotSupported(f"{what} must be a constant")
        return v


def _map(fn: Callable[[Any], Any], obj: Any) -> Any:
    """Map ``fn`` over the leaves of nested lists/tuples/dicts/slices (fx allows all four)."""
    if isinstance(obj, (list, tuple)) and not isinstance(obj, torch.Size):
        out = [_map(fn, o) for o in obj]
        return type(obj)(out) if not hasattr(obj, "_fields") else type(obj)(*out)
    if isinstance(obj, dict):
        return {k: _map(fn, v) for k, v in obj.items()}
    if isinstance(obj, slice):
        return slice(_map(fn, obj.start), _map(fn, obj.stop), _map(fn, obj.step))
    return fn(obj)


def _getitem(x: Any, i: int) -> Any:
    return x[i]


def as_int(d: Any) -> int | None:
    if isinstance(d, int):
        return d
    try:
        return d.node.maybe_as_int()
    except AttributeError:
        return None


def _first_non_placeholder(g: fx.Graph) -> fx.Node:
    for n in g.nodes:
        if n.op not in ("placeholder", "get_attr"):
            return n
    return g._root  # inserting before root appends


def _sanitize(name: str) -> str:
    s = re.sub(r"\W", "_", name)
    if not s or s[0].isdigit():
        s = "c_" + s
    return s
