"""How a converted graph is compiled for each ``compile`` option, and its compile-time warm-up.

``fast`` is hwkit's tuned path (docs/torch-backends.md): Inductor with freezing, so the graph's
weights become constants that Inductor folds and prepacks for oneDNN (convolutions, linear
layers), in the channels_last layout the converter already gives convolution weights; on CUDA it
adds CUDA graphs (what ``reduce-overhead`` does). The other values are ``torch.compile`` modes
as they are. ``fullgraph=True`` everywhere: a graph break would silently run part of the model
eagerly.

torch.compile compiles on the first call. ``warm_up`` makes that call at compile time, on the
model's seeded inputs, so that a bench row's ``compile_s`` holds the compilation and its timed
runs none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch._inductor.config

from hwkit.errors import ModelError
from hwkit_torch import onednn

if TYPE_CHECKING:
    from hwkit import Executable, Model

# Inductor options of the fast mode, per device type. max_autotune is left off: on the 2-core
# CPU measured it tripled the compile time for no steady-state gain (docs/torch-backends.md).
FAST_OPTIONS: dict[str, dict[str, Any]] = {
    "cpu": {"freezing": True},
    "cuda": {"freezing": True, "triton.cudagraphs": True},
}


def compile_graph(graph: torch.fx.GraphModule, mode: str, device_type: str, precision: str = "fp32") -> Any:
    """The module to call for ``mode``: the GraphModule itself when "off"."""
    if mode in ("off", "fast") and device_type == "cpu" and precision == "fp32" and onednn.available():
        onednn.use_onednn_linear(graph, compiled=mode == "fast")  # twice MKL's speed here (onednn.py)
    if mode == "off":
        return graph
    if mode == "fast":
        return _Patched(torch.compile(graph, fullgraph=True), FAST_OPTIONS[device_type])
    return torch.compile(graph, mode=None if mode == "default" else mode, fullgraph=True)


class _Patched:
    """Calls ``compiled`` with Inductor's config patched, so every (re)compilation sees it.

    Measured with torch 2.13: ``torch.compile(options={"freezing": True})`` compiled without
    freezing (the FX graph cache even served the unfrozen graph), while the same setting in
    ``torch._inductor.config`` froze and prepacked; patching per call keeps it out of the rest
    of the process.
    """

    def __init__(self, compiled: Any, options: dict[str, Any]) -> None:
        self.compiled = compiled
        self.options = options

    def __call__(self, *args: Any) -> Any:
        with torch._inductor.config.patch(self.options):
            return self.compiled(*args)


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
