"""Numerical parity: every chosen backend on the same graph and inputs, compared with a
reference backend under a tolerance profile. ``check`` returns a ``ParityReport``."""

from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwkit._files import finite, write_json
from hwkit.api import ModelSource, compile_with, resolve, split_target
from hwkit.backend import Precision
from hwkit.errors import OptionError
from hwkit.model import Model
from hwkit.model.specs import check_outputs
from hwkit.parity.agreement import OutputAgreement, compare_output
from hwkit.parity.tolerance import Tolerance, tolerance
from hwkit.report import tables
from hwkit.report.schema import CHECK_SCHEMA
from hwkit.runner.launch import Job, Launcher, Progress, launcher as make_launcher
from hwkit.runner.plan import InputsSource, make_input_sets, plan
from hwkit.runner.record import RunRecord, failure_error
from hwkit.runner.sweep import parse_precisions, quantized_graph, row_options, rows
from hwkit.runner.validate import check_number, check_numbers
from hwkit.system import fingerprint

RUN_BACKEND = "hwkit.parity.check:run_backend"


class VacuousPassWarning(UserWarning):
    """An output passed only because every reference element is within tolerance of 0."""


@dataclasses.dataclass(frozen=True)
class CheckSettings:
    """How to compare.

    Attributes:
        seeds: generated input sets, drawn with seeds ``seed .. seed + seeds - 1``.
        inputs: the caller's own inputs (a mapping of arrays or an .npz path) instead of
            generated ones; then ``seeds`` is not used.
        precision: the precisions every backend runs, one or a list ("fp32", "bf16,int8", ...;
            docs/precision.md); each row is judged by its precision's tolerance profile
            (``TOLERANCES``) against the reference's fp32 outputs. A backend that cannot run one
            gives an ``unsupported`` row with the reason. int8 runs hwkit's quantised graph.
        calibration: int8 only: the quantiser's calibration inputs (.npz) instead of seeded ones.
        atol / rtol: override every profile's values.
        threads: intra-op threads for every backend (None: each runtime's default).
        options: per backend name, its options (``{"openvino": {"precision": "fp16"}}``).
        isolation: each backend in a child process of its own (``ProcessLauncher``), so one that
            crashes, hangs or exits becomes a failed row instead of ending the check; False runs
            them in this process (faster start; what an in-process-registered backend needs).
        timeout: seconds one backend may take (compile + every input set) when isolated.
    """

    seeds: int = 3
    seed: int = 0
    inputs: InputsSource = None
    precision: Precision | Sequence[Precision] | str = "fp32"
    calibration: str | os.PathLike[str] | None = None
    atol: float | None = None
    rtol: float | None = None
    threads: int | None = None
    shapes: Mapping[str, Sequence[int]] | None = None
    dims: Mapping[str, int] | None = None
    options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    isolation: bool = True
    timeout: float = 600.0

    def __post_init__(self) -> None:
        check_numbers(self, {"seeds": 1, "seed": 0, "threads": 1}, whole=True)
        check_numbers(self, {"atol": 0, "rtol": 0})
        check_number("timeout", self.timeout, 0, unit="seconds")
        self.tolerance()  # an unknown precision or a negative tolerance fails here, before running

    @property
    def precisions(self) -> tuple[Precision, ...]:
        return parse_precisions(self.precision)

    def tolerance(self, precision: Precision | None = None) -> Tolerance:
        """The profile of ``precision`` (default: the first one asked for) with the overrides."""
        return tolerance(precision or self.precisions[0], self.atol, self.rtol)


@dataclasses.dataclass
class BackendParity(RunRecord):
    """One backend's outputs compared with the reference's, over every input set.

    ``backend`` is the target as chosen ("name" or "name:DEVICE").
    """

    agreement: list[OutputAgreement] = dataclasses.field(default_factory=list)
    nonfinite: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)  # output -> (NaN, Inf)
    outputs: list[dict[str, np.ndarray]] | None = dataclasses.field(default=None, repr=False)
    precision: Precision = "fp32"
    emulated: str = ""  # how the backend runs this precision without its kernels ("" natively)
    tolerance: Tolerance | None = None  # the profile this row is judged by

    @property
    def passed(self) -> bool:
        """The reference passes by definition, and so does a precision the backend does not
        support (it is no disagreement); others when they ran and every output is within tolerance."""
        if self.status in ("reference", "unsupported"):
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
    quantization: dict[str, Any] | None = None  # the int8 rows' quantiser settings

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)  # an unsupported precision is no failure

    def failures(self) -> list[str]:
        """One line per failing backend and output, for messages."""
        lines = []
        for r in self.results:
            if r.status not in ("ok", "reference", "unsupported"):  # failed, crashed, timeout: the error names it
                named = r.error.startswith(f"{split_target(r.backend)[0]}:")
                lines.append(r.error if named else f"{r.backend}: {r.error}")
            label = r.backend if r.precision == "fp32" else f"{r.backend} {r.precision}"
            for a in r.agreement:
                if not a.passed:
                    lines.append(f"{label}: output '{a.name}' {_why(a, r.tolerance or self.tolerance)}")
        return lines

    def vacuous(self) -> list[str]:
        """One line per output that passed only because the reference is within tolerance of 0
        (``OutputAgreement.vacuous``): such a pass cannot fail, an all-zero output passes too."""
        return [vacuous_note(r.backend, a, r.tolerance or self.tolerance) for r in self.results for a in r.agreement
                if a.passed and a.vacuous]

    def table(self) -> Any:
        """A rich table (``hwkit.report.tables.parity_table`` of ``to_dict()``)."""
        return tables.parity_table(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (schema ``hwkit.check/1``); non-finite numbers become "inf"/"nan"."""
        return finite({
            "schema": CHECK_SCHEMA,
            "model": {"name": self.model.name, "sha256": self.model.sha256, "opset": self.model.opset,
                      "shapes": {k: list(v) for k, v in self.shapes.items()}},
            "inputs": self.inputs,
            "tolerance": self.tolerance.to_dict(),
            "reference": {"backend": self.reference.backend, "device": self.reference.device,
                          "why": self.reference_note, "options": self.reference.options,
                          "versions": self.reference.versions,
                          "nonfinite": _nonfinite_dict(self.reference.nonfinite)},
            "passed": self.passed,
            "quantization": self.quantization,
            "results": [
                {"backend": r.backend, "device": r.device, "status": r.status, "error": r.error,
                 "precision": r.precision, "emulated": r.emulated or None,
                 "tolerance": (r.tolerance or self.tolerance).to_dict(),
                 "passed": None if r.status == "unsupported" else r.passed, "options": r.options, "versions": r.versions,
                 "nonfinite": _nonfinite_dict(r.nonfinite),
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
    launcher: Launcher | None = None,
    **overrides: Any,
) -> ParityReport:
    """Run ``model`` on each backend (default: every available one) and compare every output
    with ``reference``'s (default: the one rule of ``hwkit.runner.plan``: onnxruntime if
    available, else the first backend).

    ``overrides`` replace single fields of ``settings`` (``seeds=5, precision="fp16"``);
    ``launcher`` says where each backend runs (default: by ``settings.isolation``, each in a
    child process of its own; a crash, hang or exit there is that backend's failed row).

    Raises:
        OptionError: fewer than two backends to compare, or bad settings.
        BackendNotFoundError / BackendUnavailableError: a named backend cannot run here.
        HwkitError: the reference backend itself failed (the others' failures are recorded).
    """
    settings = dataclasses.replace(settings or CheckSettings(), **overrides)
    tol = settings.tolerance("fp32")
    run = plan(model, backends, reference)
    inputs = make_input_sets(run.model, shapes=settings.shapes, dims=settings.dims, seed=settings.seed,
                             count=settings.seeds, given=settings.inputs)
    # Every target at every precision but the reference's own fp32 run, which the others meet.
    others = [r for r in rows(run.targets, settings.precisions) if (r.target, r.precision) != (run.reference, "fp32")]
    if not others:
        raise OptionError(f"nothing to compare: only the reference '{run.reference}' would run; "
                          "name at least two backends, e.g. -b onnxruntime,openvino, or another precision")
    for row in [r for r in others if r.support.supported]:
        row_options(row.target, settings.options, row.precision)  # -o X.precision is refused before running
    int8 = quantized_graph(run.model, [r.precision for r in others], seed=settings.seed, needed=any(
        r.precision == "int8" and r.support.supported for r in others),
                           shapes=settings.shapes, dims=settings.dims, calibration=settings.calibration)
    where = launcher or make_launcher(settings.isolation)
    ref = run_job(where, run.model, run.reference, inputs.sets, settings)
    if ref.status != "ok" or ref.outputs is None:
        raise failure_error(ref, f"reference backend '{run.reference}' failed: {ref.error}; choose another "
                                 "with --reference (reference= in the API)")
    ref.status = "reference"
    ref.nonfinite = {name: _nonfinite([s[name] for s in ref.outputs]) for name in ref.outputs[0]}
    results = []
    for row in others:
        record = BackendParity(row.target, status="unsupported", error=row.support.unsupported)
        if row.support.supported:
            graph = int8.model if int8 is not None and row.precision == "int8" else run.model
            record = run_job(where, graph, row.target, inputs.sets, settings, row.precision)
        record.precision, record.emulated = row.precision, row.support.emulated
        record.tolerance = settings.tolerance(row.precision)
        results.append(record)
        if record.status != "ok" or record.outputs is None:
            continue  # recorded: the other backends still tell their story
        record.agreement = compare_sets(ref.outputs, record.outputs, record.tolerance)
        record.nonfinite = {n: _nonfinite([s[n] for s in record.outputs if n in s]) for n in ref.outputs[0]}
    report = ParityReport(run.model, inputs.shapes, tol, ref, run.reference_note, results, inputs.described,
                          int8.settings if int8 is not None else None)
    for line in report.vacuous():
        warnings.warn(line, VacuousPassWarning, stacklevel=2)
    return report


def run_job(where: Launcher, model: Model, target: str, input_sets: Sequence[Mapping[str, np.ndarray]],
            settings: CheckSettings, precision: Precision = "fp32") -> BackendParity:
    """One backend's outputs on every input set at ``precision``, run by ``where``; failures are
    in the record. An int8 ``model`` is the quantised graph: it runs at fp32 options."""
    record = BackendParity(target, precision=precision)
    job = Job(RUN_BACKEND, model, target, record,
              {"input_sets": list(input_sets), "threads": settings.threads,
               "options": row_options(target, settings.options, precision)},
              threads=settings.threads, timeout=settings.timeout)
    where.launch(job)
    return record


def run_backend(
    model: Model,
    target: str,
    record: BackendParity,
    progress: Progress | None = None,
    *,
    input_sets: Sequence[Mapping[str, np.ndarray]],
    threads: int | None = None,
    options: Mapping[str, Any] | None = None,
    check_declared: bool = True,
) -> BackendParity:
    """Compile ``model`` for ``target`` and run it once per input set, into ``record.outputs``
    (a job function: a launcher calls it here or in a child process).

    Each set's outputs are checked against the model's declared outputs (names, kinds, dtypes,
    ranks, static sizes): a backend returning something else fails with ``BackendOutputError``
    rather than being compared. ``check_declared=False`` skips that for graphs whose declared
    outputs come from best-effort shape inference (bisect's exposed tensors)."""
    name = split_target(target)[0]
    report = progress or (lambda *_: None)
    info, device, parsed = resolve(target, {**({"threads": threads} if threads else {}), **(options or {})})
    record.device, record.options, record.versions = device.name, dataclasses.asdict(parsed), info.versions()
    report(name, "compile", 0.0)
    with compile_with(info, model, device, parsed) as exe:
        outputs = []
        for inputs in input_sets:
            # Its own copy: a backend that writes into its inputs must not change what the next
            # backend (in this process) or the next input set's comparison sees.
            got = exe.run(copy.deepcopy(inputs))
            if check_declared:
                check_outputs(model.outputs, got, target, model.inputs, inputs)
            outputs.append(got)
        record.outputs = outputs
    report(name, "done", 1.0)
    return record


def compare_sets(
    reference: Sequence[Mapping[str, np.ndarray]], actual: Sequence[Mapping[str, np.ndarray]], tol: Tolerance
) -> list[OutputAgreement]:
    """Each reference output compared over all input sets at once (stacked along a new axis,
    so maxima, means and top-k rates cover every set)."""
    agreement = []
    for name in reference[0]:
        refs = [s[name] for s in reference]
        found = [s.get(name) for s in actual]
        bad = next((i for i, g in enumerate(found) if g is None or g.shape != refs[i].shape), None)
        if bad is not None:  # the first set whose shape differs gives the shape mismatch
            missing = found[bad]
            got = missing if missing is not None else np.empty((0,))
            agreement.append(compare_output(name, refs[bad], got, tol))
            continue
        gots = [g for g in found if g is not None]  # all of them: a missing one is a mismatch above
        if len({r.shape for r in refs}) == 1:
            agreement.append(compare_output(name, np.stack(refs), np.stack(gots), tol))
        else:  # data-dependent output shapes: compare the flattened sets (no top-k then)
            ref_flat, got_flat = (np.concatenate([a.ravel() for a in arrays]) for arrays in (refs, gots))
            agreement.append(compare_output(name, ref_flat, got_flat, tol))
    return agreement


def _why(a: OutputAgreement, tol: Tolerance) -> str:
    if not a.shape_ok:
        return "shape differs from the reference's (or the output is missing)"
    if a.nan or a.inf:
        return f"{a.nan} NaN, {a.inf} Inf where the reference is finite"
    return f"{a.violations} element(s) beyond atol {_atol_text(a, tol)} + rtol {tol.rtol:g}"


def _atol_text(a: OutputAgreement, tol: Tolerance) -> str:
    """The atol the output was judged by, and how it grew with the output's scale if it did."""
    if a.atol_effective is None or a.atol_effective == tol.atol or a.ref_rms is None:
        return f"{tol.atol:g}"
    return f"{a.atol_effective:.3g} ({tol.atol:g} × rms(ref) {a.ref_rms:.3g})"


def vacuous_note(backend: str, a: OutputAgreement, tol: Tolerance) -> str:
    """Why a pass of ``a`` says nothing, and the tolerance that would make it say something."""
    if tol.rtol >= 1:
        fix = "lower rtol below 1 (--rtol; rtol= in the API)"
    else:  # the profile's atol taken relative to the output's own magnitude
        fix = f"lower atol, e.g. --atol {tol.atol * (a.ref_max or 0.0):.0e} (atol= in the API)"
    return (f"{backend}: output '{a.name}' passes vacuously: every reference element is within the "
            f"tolerance of 0 (max |ref| {a.ref_max or 0.0:.2g}, atol {_atol_text(a, tol)}), so an all-zero "
            f"output would pass too; to test it, {fix}")


def _nonfinite(arrays: Sequence[np.ndarray]) -> tuple[int, int]:
    floats = [a for a in arrays if a.dtype.kind == "f" or a.dtype.name == "bfloat16"]
    nan = sum(int(np.count_nonzero(np.isnan(a.astype(np.float64)))) for a in floats)
    inf = sum(int(np.count_nonzero(np.isinf(a.astype(np.float64)))) for a in floats)
    return nan, inf


def _nonfinite_dict(counts: Mapping[str, tuple[int, int]]) -> dict[str, dict[str, int]]:
    return {k: {"nan": n, "inf": i} for k, (n, i) in counts.items()}
