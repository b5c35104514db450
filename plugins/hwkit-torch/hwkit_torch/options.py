"""Option types shared by the cpu and cuda backends and their executable. Imports no torch."""

from __future__ import annotations

import typing
from typing import Literal

CompileMode = Literal["off", "default", "reduce-overhead", "max-autotune"]
"""``torch.compile`` mode of the converted graph; "off" runs it eagerly."""
COMPILE_MODES: tuple[CompileMode, ...] = typing.get_args(CompileMode)
