"""Numerical parity: every chosen backend on the same graph and inputs, compared with a
reference backend under a tolerance profile. ``check`` returns a ``ParityReport``."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwkit.api import ModelSource, compile_with, open_model, resolve, split_target
from hwkit.measure.bench import available_backends
from hwkit._files import write_json
from hwkit.errors import BackendUnavailableError, CompileError, HwkitError, OptionError
from hwkit.model.model import Model
from hwkit.parity.agreement import OutputAgreement, compare_output
from hwkit.parity.tolerance import Tolerance, tolerance
from hwkit.plugins import registry

CHECK_SCHEMA = "hwkit.check/1"
DEFAULT_REFERENCE = "onnxruntime"
InputsSource = Mapping[str, np.ndarray] | str | os.PathLike[str] | None


@dataclasses.dataclass(frozen=True)
class CheckSettings:
    """How to compare.

    Attributes:
        seeds: generated input sets, drawn with seeds ``seed .. seed + seeds - 1``.
        inputs: the caller's own inputs (a mapping of arrays or an .npz path) instead of
            generated ones; then ``seeds`` is not used.
        precision: tolerance profile, one of ``hwkit.parity.tolerance.TOLERANCES`` ("fp32", "fp16", ...).
            It chooses how strict the test is; set a backend's own precision with ``options``.
        atol / rtol: override the profile's values.
        threads: intra-op threads for every backend (None: each runtime's default).
        options: per backend name, its options (``{"openvino": {"precision": "f16"}}``).
    """

    seeds: int = 3
    seed: int = 0
    inputs: InputsSource = None
    precision: str = "fp32"
    atol: float | None = None
    rtol: float | None = None
    threads: int | None = None
    shapes: Mapping[str, Sequence[int]] | None = None
    dims: Mapping[str, int] | None = None
    options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise OptionError(f"seeds must be a whole number >= 1, got {self.seeds!r}")
        self.tolerance()  # an unknown precision or a negative tolerance fails here, before running

    def tolerance(self) -> Tolerance:
        return tolerance(self.precision, self.atol, self.rtol)


@dataclasses.dataclass
class BackendParity:
    """One backend's outputs compared with the reference's, over every input set."""

    backend: str  # as chosen, "name" or "name:DEVICE"
    device: str = ""
    status: str = "ok"  # ok | failed | reference
    error: str = ""
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    agreement: list[OutputAgreement] = dataclasses.field(default_factory=list)
    nonfinite: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)  # output -> (NaN, Inf)
    outputs: list[dict[str, np.ndarray]] | None = dataclasses.field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        """The reference passes by definition; others when they ran and every output is within tolerance."""
        if self.status == "reference":
            return True
        return self.status == "ok" and all(a.passed for a in self.agreement)


@dataclasses.dataclass
class ParityReport:
    """Every chosen backend against the reference, on the same inputs."""

    model: Model
    shapes: dict[str, tuple[int, ...]]
    tolerance: Tolerance
    reference: BackendParity
    reference_note: str  # why this reference: "default", "--reference", or the fallback's reason
    results: list[BackendParity]
    inputs: str  # "seeds 0..2" or the .npz path

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def failures(self) -> list[str]:
        """One line per failing backend and output, for messages."""
        lines = []
        for r in self.results:
            if r.status == "failed":
                lines.append(f"{r.backend}: {r.error}")
            for a in r.agreement:
                if not a.passed:
                    lines.append(f"{r.backend}: output '{a.name}' {_why(a, self.tolerance)}")
        return lines

    def table(self) -> Any:
        return parity_table(self)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (schema ``hwkit.check/1``); non-finite numbers become "inf"/"nan"."""
        from hwkit.system import fingerprint

        return _finite({
            "schema": CHECK_SCHEMA,
            "model": {"name": self.model.name, "sha256": self.model.sha256, "opset": self.model.opset,
                      "shapes": {k: list(v) for k, v in self.shapes.items()}},
            "inputs": self.inputs,
            "tolerance": self.tolerance.to_dict(),
            "reference": {"backend": self.reference.backend, "device": self.reference.device,
                          "why": self.reference_note, "options": self.reference.options,
                          "versions": self.reference.versions,
                          "nonfinite": {k: {"nan": n, "inf": i} for k, (n, i) in self.reference.nonfinite.items()}},
            "passed": self.passed,
            "results": [
                {"backend": r.backend, "device": r.device, "status": r.status, "error": r.error,
                 "passed": r.passed, "options": r.options, "versions": r.versions,
                 "outputs": [a.to_dict() for a in r.agreement]}
                for r in self.results
            ],
            "system": fingerprint(),
        })

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        return write_json(self.to_dict(), path)


def check(
    model: ModelSource,
    backends: Sequence[str] | None = None,
    reference: str | None = None,
    settings: CheckSettings | None = None,
    **overrides: Any,
) -> ParityReport:
    """Run ``model`` on each backend (default: every available one) and compare every output
    with ``reference``'s (default: onnxruntime; if it is not available, the first backend).

    ``overrides`` replace single fields of ``settings`` (``seeds=5, precision="fp16"``).

    Raises:
        OptionError: fewer than two backends to compare, or bad settings.
        BackendNotFoundError / BackendUnavailableError: a named backend cannot run here.
        HwkitError: the reference backend itself failed (the others' failures are recorded).
    """
    settings = dataclasses.replace(settings or CheckSettings(), **overrides)
    tol = settings.tolerance()
    model = open_model(model)
    shapes, input_sets, described = make_check_inputs(model, settings)
    targets = list(dict.fromkeys(backends)) if backends else available_backends()
    if not targets:
        raise BackendUnavailableError("no backend is available; see 'hwkit backends' for what to install")
    for target in targets:
        registry().get(split_target(target)[0])  # unknown names fail before anything runs
    ref_target, note = pick_reference(targets, reference)
    others = [t for t in targets if t != ref_target]
    if not others:
        raise OptionError(f"nothing to compare: only the reference '{ref_target}' would run; "
                          "name at least two backends, e.g. -b onnxruntime,openvino")
    ref = BackendParity(ref_target, status="reference")
    try:
        ref.outputs = run_backend(model, ref_target, input_sets, settings, ref)
    except HwkitError as e:
        # UnsupportedOpError takes (backend, ops), not a message: re-raise it as its base.
        kind = CompileError if isinstance(e, CompileError) else type(e)
        raise kind(f"reference backend '{ref_target}' failed: {e}; choose another with "
                      "--reference (reference= in the API)") from e
    ref.nonfinite = {name: _nonfinite([s[name] for s in ref.outputs]) for name in ref.outputs[0]}
    results = []
    for target in others:
        record = BackendParity(target)
        results.append(record)
        try:
            record.outputs = run_backend(model, target, input_sets, settings, record)
        except HwkitError as e:  # recorded: the other backends still tell their story
            record.status, record.error = "failed", str(e)
            continue
        record.agreement = compare_sets(ref.outputs, record.outputs, tol)
        record.nonfinite = {n: _nonfinite([s[n] for s in record.outputs if n in s]) for n in ref.outputs[0]}
    return ParityReport(model, shapes, tol, ref, note, results, described)


def make_check_inputs(
    model: Model, settings: CheckSettings
) -> tuple[dict[str, tuple[int, ...]], list[dict[str, np.ndarray]], str]:
    """The input sets every backend gets, their shapes, and a description for reports."""
    if settings.inputs is not None:
        from hwkit.model.npz import load_inputs

        given = settings.inputs
        source = f"{os.fspath(given)}" if isinstance(given, (str, os.PathLike)) else "caller's arrays"
        arrays = load_inputs(given) if isinstance(given, (str, os.PathLike)) else dict(given)
        checked = model.check_inputs(arrays)
        return {k: tuple(v.shape) for k, v in checked.items()}, [checked], source
    shapes = model.resolve_shapes(settings.shapes, settings.dims)
    seeds = range(settings.seed, settings.seed + settings.seeds)
    sets = [model.check_inputs(model.make_inputs(shapes, seed=k)) for k in seeds]
    described = f"seed {settings.seed}" if settings.seeds == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    return shapes, sets, described


def pick_reference(targets: Sequence[str], reference: str | None) -> tuple[str, str]:
    """The reference backend and why it was chosen."""
    if reference:
        registry().get(split_target(reference)[0])
        return reference, "chosen with --reference"
    info = registry().backends.get(DEFAULT_REFERENCE)
    if info is not None and info.status == "available":
        return DEFAULT_REFERENCE, "the default reference"
    return targets[0], f"{DEFAULT_REFERENCE} is not available here, so the first chosen backend"


def run_backend(
    model: Model,
    target: str,
    input_sets: Sequence[Mapping[str, np.ndarray]],
    settings: CheckSettings,
    record: BackendParity,
) -> list[dict[str, np.ndarray]]:
    """Compile ``model`` for ``target`` and run it once per input set (filling ``record``)."""
    name = split_target(target)[0]
    options = {**({"threads": settings.threads} if settings.threads else {}), **settings.options.get(name, {})}
    info, device, parsed = resolve(target, options)
    record.device, record.options, record.versions = device.name, dataclasses.asdict(parsed), info.versions()
    with compile_with(info, model, device, parsed) as exe:
        return [exe.run(inputs) for inputs in input_sets]


def compare_sets(
    reference: Sequence[Mapping[str, np.ndarray]], actual: Sequence[Mapping[str, np.ndarray]], tol: Tolerance
) -> list[OutputAgreement]:
    """Each reference output compared over all input sets at once (stacked along a new axis,
    so maxima, means and top-k rates cover every set)."""
    agreement = []
    for name in reference[0]:
        refs = [s[name] for s in reference]
        gots = [s.get(name) for s in actual]
        bad = next((i for i, g in enumerate(gots) if g is None or g.shape != refs[i].shape), None)
        if bad is not None:  # the first set whose shape differs gives the shape mismatch
            got = gots[bad] if gots[bad] is not None else np.empty((0,))
            agreement.append(compare_output(name, refs[bad], got, tol))
        elif len({r.shape for r in refs}) == 1:
            agreement.append(compare_output(name, np.stack(refs), np.stack(gots), tol))  # type: ignore[arg-type]
        else:  # data-dependent output shapes: compare the flattened sets (no top-k then)
            flat = [np.concatenate([a.ravel() for a in arrays]) for arrays in (refs, gots)]  # type: ignore[union-attr]
            agreement.append(compare_output(name, *flat, tol))
    return agreement


def parity_table(report: ParityReport) -> Any:
    """One row per backend and output: errors, cosine, top-k, NaN/Inf, pass or fail."""
    from rich import box
    from rich.table import Table

    from hwkit.report.tables import format_error

    tol = report.tolerance
    shapes = ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in report.shapes.items())
    table = Table(
        title=f"hwkit check: {report.model.name} ({shapes}), {report.inputs}",
        caption=(f"reference: {report.reference.backend} ({report.reference_note}); tolerance {tol.profile}: "
                 f"|x - ref| <= {tol.atol:g} + {tol.rtol:g}·|ref| elementwise; top-k: share of rows whose "
                 "top-k classes match the reference's"),
        box=box.SIMPLE_HEAD,
    )
    for column in ("backend", "output", "max abs", "max rel", "mean abs", "cosine", "top-1", "top-5",
                   "NaN/Inf", "result"):
        text = column in ("backend", "output", "result")
        table.add_column(column, justify="left" if text else "right", no_wrap=not text, overflow="fold")
    for name, (nan, inf) in report.reference.nonfinite.items():
        table.add_row(report.reference.backend, name, "", "", "", "", "", "", f"{nan}/{inf}", "reference")
    for r in report.results:
        if r.status == "failed":
            table.add_row(r.backend, "-", "", "", "", "", "", "", "", "[red]failed[/red]")
            continue
        for a in r.agreement:
            nan, inf = r.nonfinite.get(a.name, (a.nan, a.inf))
            table.add_row(r.backend, a.name, format_error(a.max_abs), format_error(a.max_rel),
                          format_error(a.mean_abs), _fmt(a.cosine, ".6f"), _fmt(a.top1, ".0%"),
                          _fmt(a.top5, ".0%"), f"{nan}/{inf}", _verdict(a))
    return table


def _verdict(a: OutputAgreement) -> str:
    """Short, for the table; the full reason is in ``ParityReport.failures``."""
    if a.passed:
        return "[green]pass[/green]"
    if not a.shape_ok:
        return "[red]FAIL[/red] shape"
    if a.nan or a.inf:
        return "[red]FAIL[/red] NaN/Inf"
    return f"[red]FAIL[/red] {a.violations} el."


def _why(a: OutputAgreement, tol: Tolerance) -> str:
    if not a.shape_ok:
        return "shape differs from the reference's (or the output is missing)"
    if a.nan or a.inf:
        return f"{a.nan} NaN, {a.inf} Inf where the reference is finite"
    return f"{a.violations} element(s) beyond atol {tol.atol:g} + rtol {tol.rtol:g}"


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "-"
    return str(value) if math.isnan(value) else format(value, spec)


def _nonfinite(arrays: Sequence[np.ndarray]) -> tuple[int, int]:
    floats = [a for a in arrays if a.dtype.kind == "f" or a.dtype.name == "bfloat16"]
    nan = sum(int(np.count_nonzero(np.isnan(a.astype(np.float64)))) for a in floats)
    inf = sum(int(np.count_nonzero(np.isinf(a.astype(np.float64)))) for a in floats)
    return nan, inf


def _finite(value: Any) -> Any:
    """JSON has no Infinity/NaN: write them as strings so every parser reads the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
