"""The accuracy a reduced precision costs: one row's outputs against a baseline's (its own
backend's fp32 row, or the reference backend's), summed up over every output.

The figures (docs/precision.md):

- ``max_abs``: the largest ``|x - base|`` over every output's elements;
- ``max_rel``: the largest ``|x - base| / max(|base|, rms(base))`` (``agreement.relative_difference``);
- ``cosine``: the lowest cosine similarity of an output (flattened) with the baseline's;
- ``top1`` / ``top5``: for classifier-shaped outputs (floating point, last axis of at least 2
  classes; top-5 needs at least 6), the lowest share of rows (every axis but the last) whose
  top-1 class, or set of top-5 classes, is the baseline's; None when no output is shaped so.

Worst over outputs, so one summary stands for the row: a model whose second output collapses
does not hide behind a perfect first one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwkit.parity.agreement import OutputAgreement, compare_outputs
from hwkit.parity.tolerance import tolerance


def accuracy_cost(baseline: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    """The worst-over-outputs figures of ``actual`` against ``baseline`` (module docstring)."""
    return summarize(compare_outputs(baseline, actual))


def summarize(agreement: Sequence[OutputAgreement]) -> dict[str, Any]:
    """``max_abs``, ``max_rel``, ``cosine``, ``top1``, ``top5`` of several outputs, worst of each."""
    def worst(values: list[float | None], pick: Any) -> float | None:
        known = [v for v in values if v is not None]
        if any(isinstance(v, float) and math.isnan(v) for v in known):
            return float("nan")  # NaN outputs or a shape mismatch: nothing about them is fine
        return pick(known) if known else None

    return {
        "max_abs": worst([a.max_abs for a in agreement], max),
        "max_rel": worst([a.max_rel for a in agreement], max),
        "cosine": worst([a.cosine for a in agreement], min),
        "top1": worst([a.top1 for a in agreement], min),
        "top5": worst([a.top5 for a in agreement], min),
        "shape_ok": all(a.shape_ok for a in agreement),
    }


OutputSets = Sequence[Mapping[str, Any]]


def row_accuracy(precision: str, outputs: OutputSets, reference: OutputSets | None,
                 fp32: OutputSets | None) -> tuple[list[OutputAgreement] | None, dict[str, Any]]:
    """One row's parity with the reference's fp32 outputs under ``precision``'s tolerance
    profile (on the first input set: the table's parity column), and its accuracy cost over
    every input set the two have in common: ``{"vs_fp32": ..., "vs_reference": ...}`` (None
    where that baseline gave no outputs; no ``vs_fp32`` for an fp32 row, its own baseline).

    Each argument is a list of outputs, one per input set, in the same order."""
    agreement = compare_outputs(reference[0], outputs[0], tolerance(precision)) if reference else None
    cost: dict[str, Any] = {"vs_reference": _over_sets(reference, outputs) if reference else None}
    if precision != "fp32":
        cost["vs_fp32"] = _over_sets(fp32, outputs) if fp32 else None
    return agreement, cost


def _over_sets(baseline: OutputSets, actual: OutputSets) -> dict[str, Any]:
    """``accuracy_cost`` over the sets both have, each output stacked along a new leading axis,
    so that top-1 counts every item of every set; ``sets`` says how many were compared."""
    count = min(len(baseline), len(actual))
    base, got = _stacked(baseline[:count]), _stacked(actual[:count])
    if base is None or got is None:  # sequences, optionals, or shapes that differ: the first set only
        return {**accuracy_cost(baseline[0], actual[0]), "sets": 1}
    return {**accuracy_cost(base, got), "sets": count}


def _stacked(sets: OutputSets) -> dict[str, np.ndarray] | None:
    names = list(sets[0])
    if any(list(s) != names for s in sets):
        return None
    stacked = {}
    for name in names:
        values = [s[name] for s in sets]
        if not all(isinstance(v, np.ndarray) and v.shape == values[0].shape for v in values):
            return None
        stacked[name] = np.stack(values)
    return stacked
