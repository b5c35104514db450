"""Option types shared by the cpu and cuda backends and their executable. Imports no torch."""

from __future__ import annotations

import typing
from typing import Literal

CompileMode = Literal["off", "fast", "auto", "default", "reduce-overhead", "max-autotune"]
"""How the converted graph runs: "off" eagerly; "fast" with hwkit's tuned Inductor settings
(freezing, and CUDA graphs on the GPU: docs/torch-backends.md); "auto" as "fast" where
torch.compile takes the graph on its first run, else eagerly (with a warning; the options then
say "off"), the cpu backend's value in a bench; the others are ``torch.compile`` modes as they are."""
COMPILE_MODES: tuple[CompileMode, ...] = typing.get_args(CompileMode)

AttentionKernel = Literal["hwkit", "aten"]
"""Which kernel runs attention on the CPU at fp32: "hwkit" (hwkit_torch/cpu_attention.py, built
once per machine with the C++ compiler) or "aten" (torch's scaled_dot_product_attention)."""
