"""How numbers look in every view: times with units, errors in scientific notation."""

from __future__ import annotations

import math
from typing import Any

from hwkit.report.schema import number


def format_time(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{seconds:.3g} s"


def format_error(value: Any) -> str:
    """An error figure; accepts the strings "nan"/"inf" of saved results."""
    figure = number(value)
    if figure is None:
        return "-"
    if math.isinf(figure) or math.isnan(figure):
        return str(figure)
    return "0" if figure == 0 else f"{figure:.2e}"


def format_fraction(value: Any, spec: str) -> str:
    """A cosine or top-k rate; "-" when absent, "nan" as is."""
    figure = number(value)
    if figure is None:
        return "-"
    return str(figure) if math.isnan(figure) else format(figure, spec)


def shorten(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shapes_text(shapes: dict[str, list[int]]) -> str:
    """{"x": [1, 3, 224, 224]} -> "x=1x3x224x224"."""
    return ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in shapes.items())
