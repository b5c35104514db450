"""The precision axis of a run: which precisions, the rows they make with the targets, what
each backend declares for each, and the one quantised graph every int8 row compiles.

One rule for bench and check (docs/precision.md): every target runs every requested precision
its backend declares (``Backend.precisions``); a precision it cannot run is a row with status
``unsupported`` and the reason, never a silent fp32 run. An int8 row compiles hwkit's quantised
QDQ graph, made once here in the parent before any backend starts, at the backend's fp32
settings.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from hwkit.api import precision_support, resolve, split_target
from hwkit.backend import PRECISIONS, Precision, PrecisionSupport
from hwkit.errors import OptionError
from hwkit.model import Model

if TYPE_CHECKING:
    from hwkit.model.quantize import Quantized

PrecisionsSource = str | Sequence[str]


def parse_precisions(value: PrecisionsSource) -> tuple[Precision, ...]:
    """``"fp32,bf16"`` or ``["fp32", "bf16"]`` -> ``("fp32", "bf16")``, each once, in order.

    Raises:
        OptionError: an unknown precision (the message lists the valid ones) or an empty list.
    """
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = [str(p).strip().lower() for p in parts if str(p).strip()]
    unknown = [n for n in names if n not in PRECISIONS]
    if unknown or not names:
        what = f"unknown precision '{unknown[0]}'" if unknown else "no precision given"
        raise OptionError(f"{what}; valid precisions: {', '.join(PRECISIONS)} (a comma list, e.g. fp32,bf16,int8)")
    return tuple(dict.fromkeys(cast("list[Precision]", names)))


def with_baseline(precisions: Sequence[Precision], needed: bool = True) -> tuple[tuple[Precision, ...], bool]:
    """The precisions to run, fp32 first, and whether fp32 was added only as the baseline that
    the accuracy ("Δ vs fp32") and speed-up columns of the other precisions need."""
    if not needed or "fp32" in precisions:
        return tuple(sorted(precisions, key=PRECISIONS.index)), False
    return ("fp32", *sorted(precisions, key=PRECISIONS.index)), True


@dataclasses.dataclass(frozen=True)
class Row:
    """One (target, precision) of a run: how the backend declares it, and the options it gets."""

    target: str
    precision: Precision
    support: PrecisionSupport
    baseline: bool = False  # fp32 run only so that the other precisions have a baseline
    device: str = ""  # the device the target resolves to (named even on a row that never runs)

    @property
    def compiled_precision(self) -> Precision:
        """What ``options.precision`` the backend compiles with: int8 is its fp32 run of the QDQ graph."""
        return "fp32" if self.precision == "int8" else self.precision


def rows(targets: Sequence[str], precisions: Sequence[Precision], baseline: bool = False) -> list[Row]:
    """Every target × precision, backend by backend, with each backend's declared support.

    Raises:
        BackendNotFoundError / BackendUnavailableError: a target cannot run here (as ``plan``).
    """
    found = []
    for target in targets:
        info, device, _ = resolve(target, {})
        for precision in precisions:
            support = precision_support(info, device, precision)
            found.append(Row(target, precision, support, baseline and precision == "fp32", device.name))
    return found


def row_options(target: str, options: Mapping[str, Mapping[str, Any]], precision: Precision) -> dict[str, Any]:
    """A backend's own ``-o`` options with the row's precision.

    Raises:
        OptionError: ``-o BACKEND.precision`` was given: the precision is the sweep's axis.
    """
    name = split_target(target)[0]
    own = dict(options.get(name, {}))
    if "precision" in own:
        raise OptionError(f"-o {name}.precision is replaced by --precision, which every backend follows: "
                          f"use --precision {own['precision']} (a list sweeps, e.g. --precision fp32,{own['precision']})")
    return {**own, "precision": "fp32" if precision == "int8" else precision}


def quantized_graph(model: Model, precisions: Sequence[Precision], *, needed: bool = True, seed: int = 0,
                    shapes: Mapping[str, Sequence[int]] | None = None, dims: Mapping[str, int] | None = None,
                    calibration: str | os.PathLike[str] | None = None) -> Quantized | None:
    """The int8 graph every int8 row compiles (made once, here), or None without int8 among the
    requested ``precisions`` or when no backend runs it (``needed`` False: its rows are unsupported).

    Raises:
        ModelError: a bad calibration file, or a graph with nothing to quantise.
        OptionError: ``calibration`` was given without int8 among the precisions.
    """
    if "int8" not in precisions:
        if calibration is not None:
            raise OptionError("--calibration is for int8 only: add int8 to --precision, e.g. --precision fp32,int8")
        return None
    if not needed:
        return None
    from hwkit.model.quantize import quantize_int8  # the quantiser's libraries load only for int8

    return quantize_int8(model, seed=seed, shapes=shapes, dims=dims, calibration=calibration)
