"""How a converted graph is compiled for each ``compile`` option, and its compile-time warm-up.

``fast`` is hwkit's tuned path (docs/torch-backends.md): Inductor with freezing, so the graph's
weights become constants that Inductor folds and prepacks for oneDNN (convolutions, linear
layers), in the channels_last layout the converter already gives convolution weights; on the CPU
with Inductor's C++ wrapper, on CUDA with CUDA graphs (what ``reduce-overhead`` does). The other
values are ``torch.compile`` modes as they are. ``fullgraph=True`` everywhere: a graph break
would silently run part of the model eagerly.

torch.compile compiles on the first call. ``warm_up`` makes that call at compile time, on the
model's seeded inputs, so that a bench row's ``compile_s`` holds the compilation and its timed
runs none of it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import torch
import torch._inductor.config

from hwkit.errors import ModelError
from hwkit_torch import cpu_attention, inductor_onednn, onednn

if TYPE_CHECKING:
    from hwkit import Executable, Model

# Inductor options of the fast mode, per device type. max_autotune is left off: on the 2-core
# CPU measured it tripled the compile time for no steady-state gain (docs/torch-backends.md).
# cpp_wrapper: the compiled graph calls its kernels and oneDNN ops from C++, not from a Python
# wrapper line by line: 2-7 % less per run on the CPU (most on many small ops: MobileNetV2),
# no longer to compile (docs/torch-backends.md).
FAST_OPTIONS: dict[str, dict[str, Any]] = {
    "cpu": {"freezing": True, "cpp_wrapper": True},
    "cuda": {"freezing": True, "triton.cudagraphs": True},
}


def compile_graph(graph: torch.fx.GraphModule, mode: str, device_type: str, precision: str = "fp32",
                  attention: str = "aten") -> Any:
    """The module to call for ``mode``: the GraphModule itself when "off"."""
    on_onednn = device_type == "cpu" and precision == "fp32" and onednn.available()  # twice MKL's speed here
    if device_type == "cpu" and precision == "fp32" and attention == "hwkit":
        cpu_attention.use_hwkit_attention(graph)  # every mode: the kernel is an op Inductor calls
    if mode == "off":
        if on_onednn:
            onednn.use_onednn_linear(graph)  # prepacked, called directly (onednn.py)
        return graph
    if mode == "fast":
        options = FAST_OPTIONS[device_type]
        context: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
        if on_onednn and inductor_onednn.available():  # Inductor packs them for oneDNN (inductor_onednn.py)
            options = {**options, "post_grad_custom_post_pass": inductor_onednn.cache_key()}
            context = inductor_onednn.fp32_linears_on_onednn
        return _Compiled(torch.compile(graph, fullgraph=True), graph, options, context)
    return _Compiled(torch.compile(graph, mode=None if mode == "default" else mode, fullgraph=True), graph, {})


class _Compiled:
    """Calls ``compiled`` so that every (re)compilation it triggers sees Inductor's config
    patched with ``options`` and ``context`` open, and keeps ``graph``'s code in step with its graph.

    Measured with torch 2.13: ``torch.compile(options={"freezing": True})`` compiled without
    freezing (the FX graph cache even served the unfrozen graph), while the same setting in
    ``torch._inductor.config`` froze and prepacked. Both are opened by dynamo's compile-start
    callback (``_settings_while_compiling``), only while a compilation runs: opening them around
    every call cost 59 us a run (measured), 2 % of the built-in encoder's, inside the timed loop.

    torch 2.13's dynamo rewrites the compiled GraphModule's own graph while compiling it
    (``insert_deferred_runtime_asserts`` runs on every GraphModule its root holds, ours
    included, and replaces ``size()`` calls) without regenerating its code; the recompile for a
    new input shape then maps source lines to nodes that are gone and fails (IndexError, seen on
    BERT with dynamic axes at its second shape). Regenerating the code after a call that changed
    the graph keeps every later shape compiling.
    """

    def __init__(self, compiled: Any, graph: torch.fx.GraphModule, options: dict[str, Any],
                 context: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext) -> None:
        _settings_while_compiling()
        self.compiled = compiled
        self.graph = graph
        self.options = options
        self.context = context
        self.nodes = len(graph.graph.nodes)

    def __call__(self, *args: Any) -> Any:
        _calling.append(self)  # whose settings a compilation starting in this call gets
        try:
            result = self.compiled(*args)
        finally:
            _calling.pop()
        if len(self.graph.graph.nodes) != self.nodes:  # O(1): rewritten while compiling (above)
            self.graph.recompile()
            self.nodes = len(self.graph.graph.nodes)
        return result


_calling: list[_Compiled] = []  # the _Compiled calls in progress, innermost last
_opened = contextlib.ExitStack()  # their settings, while dynamo compiles


@functools.cache
def _settings_while_compiling() -> None:
    """Registers, once per process, dynamo callbacks that open the settings of the innermost
    ``_Compiled`` call when a compilation starts and close them when it ends (dynamo calls them
    once for nested compilations); a compilation outside hwkit's calls sees torch's own."""
    def start(_: Any) -> None:
        if _calling:
            _opened.enter_context(torch._inductor.config.patch(_calling[-1].options))
            _opened.enter_context(_calling[-1].context())

    def end(_: Any) -> None:
        _opened.close()

    import torch._dynamo.callback

    torch._dynamo.callback.on_compile_start(start)
    torch._dynamo.callback.on_compile_end(end)


def warm_up(executable: Executable, model: Model) -> None:
    """One run on the model's seeded inputs (its default sizes), so compilation happens now.

    A compile error surfaces here as the ``ExecutionError`` naming the model, at compile time.
    A model with a dynamic dimension that has no default size cannot be given inputs here: it
    compiles on its first run instead, which the bench reports as ``first_run_s``.
    """
    try:
        inputs = model.make_inputs(seed=0)
    except ModelError:  # a dimension without a default: see above
        return
    executable.execute(inputs)
    executable.synchronize()
