"""``bench()``: every chosen backend on the same graph and the same seeded inputs, each run by a
launcher (its own process by default), then outputs compared with the reference's and FLOPs
with the device's peak."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from hwkit.api import ModelSource, split_target
from hwkit.measure import load
from hwkit.measure.efficiency import attach_efficiency
from hwkit.measure.records import BackendResult, BenchResult
from hwkit.measure.settings import BenchSettings
from hwkit.errors import OptionError
from hwkit.model import Model
from hwkit.parity.accuracy import row_accuracy
from hwkit.parity.check import BackendParity
from hwkit.runner.launch import Job, Launcher, Progress, Stopped, launcher
from hwkit.runner.plan import InputSets, batch_dim, make_input_sets, plan
from hwkit.runner.sweep import Row, parse_precisions, quantized_graph, row_options, rows, with_baseline

MEASURE = "hwkit.measure.loop:measure"
OUTPUTS_ONLY = "hwkit.parity.check:run_backend"


def bench(
    model: ModelSource,
    backends: Sequence[str] | None = None,
    settings: BenchSettings | None = None,
    progress: Progress | None = None,
    reference: str | None = None,
    **overrides: Any,
) -> BenchResult:
    """Measure ``model`` on each backend (default: every available one) under equal conditions.

    Args:
        model: a Model, ModelProto, bytes, an .onnx path or a built-in model's name.
        backends: names, optionally with a device ("openvino:GPU").
        settings: how to measure; keyword ``overrides`` replace single fields of it
            (``precision=`` is ``precisions=``, as ``check`` spells it: "bf16,int8" or a list).
        progress: called with (backend, phase, fraction) while it works.
        reference: the backend whose outputs the others are compared with (default: the one
            rule of ``hwkit.runner.plan``); one that is not measured runs once, untimed.

    A backend that fails is recorded with its error and the others go on; so is one whose
    outputs are not the model's declared outputs (``BackendOutputError``, checked on the first
    run, outside the clock). Ctrl-C (or a ``Stopped`` signal) stops the run and returns what was
    measured so far with ``interrupted`` and ``interrupted_by`` set.
    """
    started = time.perf_counter()
    if "precision" in overrides:  # the keyword check() takes: one precision or a list
        overrides["precisions"] = overrides.pop("precision")
    settings = dataclasses.replace(settings or BenchSettings(), **overrides)
    run = plan(model, backends, reference)
    batches: list[int | None] = list(settings.batches) if settings.batches else [None]
    inputs = [make_input_sets(run.model, shapes=settings.shapes, dims=settings.dims, seed=settings.seed,
                              count=settings.input_sets, batch=b) for b in batches]  # bad shapes fail now
    keys = [b if b is not None else _leading(run.model, sets) for b, sets in zip(batches, inputs)]
    if 0 in keys:  # a 0-item batch times no work: items/s and GFLOP/s would be 0/0, so say so now
        name = run.model.inputs[0].name
        shape = "x".join(map(str, inputs[keys.index(0)].shapes[name]))
        raise OptionError(f"input '{name}' has a batch of 0 items (shape {shape}): there is nothing to measure; "
                          "give a batch size >= 1 (--shape, --dim)")
    requested = parse_precisions(settings.precisions)  # a tuple already; parsed for the type checker
    precisions, added = with_baseline(requested, needed=requested != ("fp32",))
    sweep = rows(run.targets, precisions, baseline=added)
    for row in sweep:
        if row.support.supported:
            row_options(row.target, settings.options, row.precision)  # -o X.precision is refused now
    int8 = quantized_graph(run.model, [r.precision for r in sweep], seed=settings.seed, needed=any(
        r.precision == "int8" and r.support.supported for r in sweep),
                           shapes=settings.shapes, dims=settings.dims, calibration=settings.calibration)
    result = BenchResult(run.model, settings, {k: s.shapes for k, s in zip(keys, inputs)}, [],
                         reference=split_target(run.reference)[0], reference_note=run.reference_note,
                         quantization=int8.settings if int8 else None)
    where = launcher(settings.isolation)
    try:
        for key, sets in zip(keys, inputs):
            for row in sweep:
                record = _record(row, key)
                result.results.append(record)
                if not row.support.supported:
                    continue
                graph = int8.model if int8 is not None and row.precision == "int8" else run.model
                before = load.snapshot()
                # The row's precision reaches the backend as its option (row_options), so the timed
                # loop knows nothing of the sweep.
                name = split_target(row.target)[0]
                own = dataclasses.replace(settings, options={**settings.options,
                                                             name: row_options(row.target, settings.options, row.precision)})
                where.launch(_job(MEASURE, graph, row.target, record, settings, input_sets=sets.sets,
                                  settings=own), progress)
                record.others_busy_cores = load.others_busy_cores(before, load.snapshot())
        if not run.reference_chosen:
            _reference_outputs(result, run.reference, keys, inputs, where)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM / SIGHUP under runner.launch.stop_on_signals
        result.interrupted = True
        result.interrupted_by = stop.name if isinstance(stop, Stopped) else "SIGINT"
        why = f"stopped by {stop.name}" if isinstance(stop, Stopped) else "interrupted by the user (Ctrl-C)"
        for record in result.results:
            if record.status == "ok" and not record.samples:
                record.status, record.error = "interrupted", why
    _after_measuring("comparing outputs", attach_agreement, result)
    if settings.efficiency and not result.interrupted:
        _after_measuring("counting FLOPs and the peak", attach_efficiency, result)
    result.elapsed_s = time.perf_counter() - started
    return result


def _record(row: Row, batch: int) -> BackendResult:
    """The row's record before it runs: unsupported with the backend's reason, or to be measured."""
    name, device = split_target(row.target)
    record = BackendResult(backend=name, device=row.device or device or "", batch=batch, precision=row.precision,
                           emulated=row.support.emulated, baseline=row.baseline)
    if not row.support.supported:
        record.status, record.error = "unsupported", row.support.unsupported
    return record


def _job(function: str, model: Model, target: str, record: Any, limits: BenchSettings, **arguments: Any) -> Job:
    """A job with the bench's thread count and timeout (``limits``) and the function's ``arguments``."""
    return Job(function, model, target, record, arguments, limits.resolved_threads(), limits.timeout)


def _reference_outputs(result: BenchResult, target: str, keys: list[int], inputs: list[InputSets],
                       where: Launcher) -> None:
    """A reference that was not chosen runs once per batch size, untimed, for its outputs."""
    settings = result.settings
    name = split_target(target)[0]
    for key, sets in zip(keys, inputs):
        record = BackendParity(target)
        where.launch(_job(OUTPUTS_ONLY, result.model, target, record, settings, input_sets=sets.sets,
                          threads=settings.resolved_threads(), options=row_options(name, settings.options, "fp32")))
        if record.outputs:
            result.reference_set_outputs[key] = record.outputs
        else:
            result.reference_error = f"{target}: {record.error}"


def attach_agreement(result: BenchResult) -> None:
    """Compare every row's outputs on the first input set with the reference's fp32 outputs,
    batch by batch, under the row's precision's tolerance profile; and its accuracy over every
    input set with the reference's and with its own backend's fp32 row's (``parity.accuracy``).
    Without the reference's outputs there is nothing to compare with."""
    for batch in result.batches:
        reference = result.reference_set_outputs.get(batch)
        if reference is None:
            chosen = next((r for r in result.results if r.backend == result.reference and r.batch == batch
                           and r.precision == "fp32"), None)
            reference = _sets(chosen) if chosen else None
        for record in result.results:
            if record.batch == batch and record.outputs is not None:
                base = result.baseline_of(record)
                record.agreement, record.accuracy = row_accuracy(
                    record.precision, _sets(record) or [], reference, _sets(base) if base is not None else None)


def _sets(record: BackendResult) -> list[dict[str, Any]] | None:
    """A row's outputs per input set (older records, and rows from elsewhere, hold the first only)."""
    if record.set_outputs:
        return record.set_outputs
    return [record.outputs] if record.outputs is not None else None


def _after_measuring(what: str, step: Callable[[BenchResult], None], result: BenchResult) -> None:
    """Run a step that only adds columns: whatever it raises (a plugin's odd outputs, a broken
    cache) becomes one warning, and every measured row still reaches the table and the files."""
    try:
        step(result)
    except Exception as e:  # noqa: BLE001 - reported, not swallowed: the figures it adds stay empty
        warnings.warn(f"{what} failed, those columns are empty: {type(e).__name__}: {' '.join(str(e).split())}",
                      stacklevel=3)


def _leading(model: Model, sets: InputSets) -> int:
    """Items per inference without a sweep: the batch dimension's size, else 1."""
    spec = model.inputs[0] if model.inputs else None
    if spec and batch_dim(model) and sets.shapes[spec.name]:
        return sets.shapes[spec.name][0]
    return 1
