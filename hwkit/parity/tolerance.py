"""Tolerance profiles: how far an output may be from the reference's, per precision.

``TOLERANCES`` holds the default tolerance of each precision of ``hwkit.backend.Precision``
(why these values: docs/parity.md); ``tolerance()`` picks one and applies overrides.
"""

from __future__ import annotations

import dataclasses

from hwkit.backend import Precision
from hwkit.errors import OptionError


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How far an output may be from the reference: ``|a - ref| <= atol_eff + rtol * |ref|``
    elementwise, with ``atol_eff = effective_atol(rms(ref))`` for float outputs.

    Attributes:
        profile: the precision profile the values came from ("fp32", "fp16", "bf16", "int8").
        atol / rtol: absolute and relative tolerance.
    """

    profile: Precision
    atol: float
    rtol: float

    def __post_init__(self) -> None:
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:  # also refuses NaN
                raise OptionError(f"{name} must be a number >= 0, got {value!r}")

    def effective_atol(self, scale: float | None) -> float:
        """``atol * max(1, scale)``, ``scale`` being the reference output's rms: float rounding
        error grows with the magnitude of the values computed, so for outputs larger than 1 the
        absolute tolerance grows with them (measured: docs/parity.md). At or below 1 it is
        ``atol`` itself, so small outputs and residuals near 0 keep an absolute test."""
        if scale is None or not scale > 1.0:  # None, NaN or at most 1
            return self.atol
        return self.atol * scale

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


# Whole-network tolerances per precision, one for each of hwkit.backend.PRECISIONS. fp32: reasoned
# and checked; fp16, bf16, int8: atol is twice the worst measured on the built-in models and on
# ResNet-50, BERT and ViT (benchmarks/precision_profiles.py), rounded up. Figures: docs/parity.md.
TOLERANCES: dict[Precision, Tolerance] = {
    "fp32": Tolerance("fp32", atol=1e-4, rtol=1e-3),
    "fp16": Tolerance("fp16", atol=2e-2, rtol=1e-2),
    "bf16": Tolerance("bf16", atol=2e-1, rtol=5e-2),
    "int8": Tolerance("int8", atol=7e-1, rtol=1e-1),
}


def tolerance(precision: str = "fp32", atol: float | None = None, rtol: float | None = None) -> Tolerance:
    """The profile's tolerance for ``precision``, with ``atol`` / ``rtol`` overriding its values."""
    base = TOLERANCES.get(precision)  # type: ignore[call-overload]  # any str: unknown ones are refused below
    if base is None:
        raise OptionError(f"unknown precision '{precision}'; choose one of {', '.join(TOLERANCES)}")
    return Tolerance(
        base.profile,
        base.atol if atol is None else atol,
        base.rtol if rtol is None else rtol,
    )
