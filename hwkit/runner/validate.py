"""Numeric settings checked once, for every settings class (bench's and check's): a NaN, an
infinity or a value below its minimum is one OptionError before anything is allocated or run."""

from __future__ import annotations

import math
import numbers

from hwkit.errors import OptionError


def check_number(name: str, value: object, minimum: float, *, whole: bool = False, unit: str = "") -> None:
    """Raise OptionError unless ``value`` is a finite number (a whole one when ``whole``) >= ``minimum``.

    NaN compares false with everything, so a plain ``value < minimum`` lets it through; an
    infinite time would never end a loop; bool is refused though Python counts it as an int.
    """
    kind = "a whole number" if whole else "a finite number"
    ok_type = isinstance(value, numbers.Integral if whole else numbers.Real) and not isinstance(value, bool)
    if not ok_type or not math.isfinite(float(value)) or float(value) < minimum:  # type: ignore[arg-type]
        bound = f"{minimum:g}{' ' + unit if unit else ''}"
        raise OptionError(f"{name} must be {kind} >= {bound}; got {value!r}")


def check_numbers(owner: object, minimums: dict[str, float], *, whole: bool = False, unit: str = "") -> None:
    """``check_number`` on each named attribute of ``owner``; None (a default) is skipped."""
    for name, minimum in minimums.items():
        value = getattr(owner, name)
        if value is not None:
            check_number(name, value, minimum, whole=whole, unit=unit)
