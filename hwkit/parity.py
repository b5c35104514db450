"""Comparing one backend's outputs with a reference backend's, on the same inputs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np


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

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def compare_output(name: str, reference: np.ndarray, actual: np.ndarray) -> OutputAgreement:
    """Error metrics of ``actual`` against ``reference`` (both cast to float64)."""
    if reference.shape != actual.shape:
        nan = float("nan")
        return OutputAgreement(name, nan, nan, nan, nan, 0, 0, shape_ok=False)
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
    rel = diff / np.maximum(np.abs(ref[both]), np.finfo(np.float64).tiny)
    max_rel = float("inf") if broken else float(rel.max(initial=0.0))
    mean_abs = float(diff.mean()) if diff.size else (float("inf") if broken else 0.0)
    a, b = ref[both].ravel(), got[both].ravel()
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(a @ b / norms) if norms > 0 else (1.0 if np.array_equal(a, b) else 0.0)
    return OutputAgreement(name, max_abs, max_rel, mean_abs, cosine, nan, inf, True)


def compare_outputs(
    reference: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]
) -> list[OutputAgreement]:
    """Agreement of every reference output; a missing output counts as a shape mismatch."""
    missing = np.empty((0,))
    return [compare_output(name, ref, actual.get(name, missing)) for name, ref in reference.items()]


def _as_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float64)
    return np.asarray(array, dtype=np.float64)
