"""Comparing one backend's outputs with a reference backend's, on the same inputs.

``compare_output`` gives the error metrics of one output (and, given a ``Tolerance``, whether it
passes the allclose-style test ``|actual - ref| <= atol_eff + rtol * |ref|`` elementwise, where
``atol_eff = atol * max(1, rms(ref))`` for float outputs: ``Tolerance.effective_atol``).
The relative difference is taken against ``max(|ref|, rms(ref))``, so it stays finite and
meaningful where the reference is 0. Why both: docs/parity.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from typing import Any

import numpy as np

from hwkit.parity.tolerance import Tolerance


@dataclasses.dataclass(frozen=True)
class OutputAgreement:
    """How one output of a backend agrees with the reference's."""

    name: str
    max_abs: float
    max_rel: float
    mean_abs: float
    cosine: float
    nan: int  # NaN / Inf count in the backend's output where the reference is finite
    inf: int
    shape_ok: bool
    # Rows (all axes but the last) whose top-1 / top-5 indices match the reference's, as a
    # fraction; None unless the output looks like class scores (float, last axis >= 2; >= 6 for top-5).
    top1: float | None = None
    top5: float | None = None
    # Set only when compared under a Tolerance: elements outside it, and whether none is.
    violations: int | None = None
    passed: bool | None = None
    # The reference's magnitude over its finite elements (None when it has none).
    ref_max: float | None = None  # max |ref|
    ref_rms: float | None = None  # sqrt(mean(ref²)): the output's scale
    # Set only when compared under a Tolerance:
    atol_effective: float | None = None  # atol * max(1, ref_rms) for float outputs, else atol
    tol_ratio: float | None = None  # max |x - ref| / (atol_effective + rtol·|ref|): <= 1 passes
    # Every reference element is within tolerance of 0, so an all-zero output would pass too:
    # the pass cannot tell a right output from a zero one (docs/parity.md).
    vacuous: bool | None = None

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def compare_output(
    name: str, reference: np.ndarray, actual: np.ndarray, tol: Tolerance | None = None
) -> OutputAgreement:
    """Error metrics of ``actual`` against ``reference`` (both cast to float64).

    With ``tol``, also counts the elements outside it (``violations``) and sets ``passed``: a
    shape mismatch, or NaN / Inf where the reference has none (or a different one), always fails.
    """
    if reference.shape != actual.shape:
        nan = float("nan")
        failed = (reference.size or 1, False) if tol is not None else (None, None)
        return OutputAgreement(name, nan, nan, nan, nan, 0, 0, False, None, None, *failed)
    ref = _as_float(reference)
    got = _as_float(actual)
    ref_nan, got_nan = np.isnan(ref), np.isnan(got)
    finite_ref = np.isfinite(ref)
    nan = int(np.count_nonzero(got_nan & ~ref_nan))
    inf = int(np.count_nonzero(np.isinf(got) & finite_ref))
    # Where the reference itself is NaN or ±Inf, the backend agrees only by giving the same.
    special_agree = (ref_nan & got_nan) | (np.isinf(ref) & (ref == got))
    special_mismatch = int(np.count_nonzero(~finite_ref & ~special_agree))
    both = finite_ref & np.isfinite(got)
    diff = np.abs(got[both] - ref[both])
    broken = bool(nan or inf or special_mismatch)
    max_abs = float("inf") if broken else float(diff.max(initial=0.0))
    ref_max, ref_rms = magnitude(ref)
    max_rel = float("inf") if broken else relative_difference(diff, ref[both], ref_rms)
    mean_abs = float(diff.mean()) if diff.size else (float("inf") if broken else 0.0)
    a, b = ref[both].ravel(), got[both].ravel()
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(a @ b / norms) if norms > 0 else (1.0 if np.array_equal(a, b) else 0.0)
    if broken:  # over the finite elements alone it would look perfect next to NaN outputs
        cosine = float("nan")
    top1, top5 = _topk_agreement(reference, actual)
    if tol is None:
        return OutputAgreement(name, max_abs, max_rel, mean_abs, cosine, nan, inf, True, top1, top5,
                               ref_max=ref_max, ref_rms=ref_rms)
    atol = tol.effective_atol(ref_rms) if _floating(reference) else tol.atol
    violations = count_violations(ref, got, tol, atol)
    bound = atol + tol.rtol * np.abs(ref[both])
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero bound: 0/0 agrees, x/0 is inf
        ratios = np.where(diff == 0, 0.0, diff / bound)
    tol_ratio = float("inf") if broken else float(ratios.max(initial=0.0))
    # A zero output would pass too: no reference element stands out of the tolerance around 0.
    vacuous = bool(ref_max) and bool(np.all(np.abs(ref[finite_ref]) <= atol + tol.rtol * np.abs(ref[finite_ref])))
    return OutputAgreement(name, max_abs, max_rel, mean_abs, cosine, nan, inf, True, top1, top5,
                           violations, violations == 0, ref_max, ref_rms, atol, tol_ratio, vacuous)


def magnitude(reference: np.ndarray) -> tuple[float | None, float | None]:
    """``(max |ref|, rms(ref))`` over the finite elements; ``(None, None)`` when there are none."""
    values = _as_float(reference)
    values = values[np.isfinite(values)]
    if not values.size:
        return None, None
    return float(np.abs(values).max()), float(np.sqrt(np.mean(np.square(values))))


def relative_difference(diff: np.ndarray, reference: np.ndarray, scale: float | None) -> float:
    """``max |x - ref| / max(|ref|, scale)``: the usual relative difference where ``|ref|`` is
    at least the output's scale (its rms), the difference in units of that scale below it, so a
    reference element of 0 gives no 1e+300. Only an all-zero reference gives inf (for a nonzero
    difference)."""
    if not diff.size:
        return 0.0
    denominator = np.maximum(np.abs(reference), scale or 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / denominator)
    return float(rel.max())


def count_violations(reference: np.ndarray, actual: np.ndarray, tol: Tolerance, atol: float | None = None) -> int:
    """Elements where ``|actual - ref| > atol + rtol * |ref|``; NaN matches only NaN and an
    infinity only the same infinity (what ``np.isclose(equal_nan=True)`` does). ``atol``
    replaces ``tol.atol`` (``compare_output`` passes the effective one)."""
    ref, got = _as_float(reference), _as_float(actual)
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.isclose(got, ref, rtol=tol.rtol, atol=tol.atol if atol is None else atol, equal_nan=True)
    return int(close.size - np.count_nonzero(close))


def looks_like_scores(array: np.ndarray) -> bool:
    """Float outputs whose last axis has at least two entries: class scores, logits, probabilities."""
    return _floating(array) and array.ndim >= 1 and array.shape[-1] >= 2


def _floating(array: np.ndarray) -> bool:
    return bool(np.issubdtype(array.dtype, np.floating)) or array.dtype.name == "bfloat16"


def _topk_agreement(reference: np.ndarray, actual: np.ndarray) -> tuple[float | None, float | None]:
    """Top-1 and top-5 agreement rates over rows (top-5: the same set of five indices).

    Top-5 needs more than five classes: with five or fewer the sets are always equal."""
    if not looks_like_scores(reference) or reference.size == 0:
        return None, None
    classes = reference.shape[-1]
    # Negated so that the smallest come first; a NaN row picks NaN positions, so it disagrees.
    ref = -_as_float(reference).reshape(-1, classes)
    got = -_as_float(actual).reshape(-1, classes)
    top1 = float(np.mean(np.argmin(ref, axis=1) == np.argmin(got, axis=1)))
    if classes <= 5:
        return top1, None
    ref5 = np.sort(np.argpartition(ref, 4, axis=1)[:, :5], axis=1)
    got5 = np.sort(np.argpartition(got, 4, axis=1)[:, :5], axis=1)
    return top1, float(np.mean(np.all(ref5 == got5, axis=1)))


def compare_outputs(
    reference: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray], tol: Tolerance | None = None
) -> list[OutputAgreement]:
    """Agreement of every reference output; a missing output counts as a shape mismatch.

    Sequence outputs (lists of arrays) are compared element by element, as one flat array when
    every element's shape matches; an absent optional (None) agrees only with None.
    """
    missing = np.empty((0,))
    return [compare_output(name, *_comparable(ref, actual.get(name, missing)), tol) for name, ref in reference.items()]


def _comparable(reference: Any, actual: Any) -> tuple[np.ndarray, np.ndarray]:
    """Plain arrays standing for two output values of any kind (tensor, sequence, None)."""
    if not isinstance(reference, (list, tuple)) and not isinstance(actual, (list, tuple)) \
            and reference is not None and actual is not None:
        return reference, actual
    ref, got = _as_list(reference), _as_list(actual)
    if len(ref) != len(got) or any(np.shape(a) != np.shape(b) for a, b in zip(ref, got)):
        return np.empty((len(ref), 0)), np.empty((len(got) + 1, 0))  # different shapes: a mismatch
    if not ref:
        return np.empty((0,)), np.empty((0,))
    return (np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in ref]),
            np.concatenate([np.ravel(np.asarray(b, dtype=np.float64)) for b in got]))


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def _as_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float64)
    return np.asarray(array, dtype=np.float64)
