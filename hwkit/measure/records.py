"""What a bench produced: one ``BackendResult`` per backend and batch, gathered in a
``BenchResult``. ``BenchResult.to_dict`` computes every reported figure once, as the documented
``hwkit.bench/2`` dict; every view (table, CSV, Markdown, plot, JSON) renders that dict, so a
result just measured and one read back from a file look the same."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hwkit._files import atomic_write, finite, write_json
from hwkit.backend import Precision
from hwkit.measure.settings import BenchSettings
from hwkit.measure.stats import Summary, summarize
from hwkit.model import Model
from hwkit.parity.agreement import OutputAgreement
from hwkit.report import files, plot, tables
from hwkit.report.schema import BENCH_SCHEMA
from hwkit.runner.record import RunRecord
from hwkit.measure import load
from hwkit.system import fingerprint, usable_cores


@dataclasses.dataclass
class BackendResult(RunRecord):
    """What one backend gave at one batch size: its timings, or why it has none."""

    device_kind: str = "cpu"  # the Device's kind: which measured peak "% of peak" uses
    batch: int = 1
    compile_s: float | None = None
    first_run_s: float | None = None
    samples: list[float] = dataclasses.field(default_factory=list)
    hit_max_time: bool = False
    device_memory: dict[str, int] = dataclasses.field(default_factory=dict)
    device_samples: list[float] = dataclasses.field(default_factory=list)  # device-timer seconds
    others_busy_cores: float | None = None  # other processes' average busy cores during this run
    outputs: dict[str, np.ndarray] | None = dataclasses.field(default=None, repr=False)
    # Every input set's outputs (the first is ``outputs``), run once outside the clock: the
    # accuracy columns (top-1 agreement above all) need more than one set's items to mean much.
    set_outputs: list[dict[str, np.ndarray]] = dataclasses.field(default_factory=list, repr=False)
    agreement: list[OutputAgreement] | None = None
    # The precision axis (docs/precision.md): the row's precision, how its backend runs it
    # without that precision's kernels ("" when natively), whether it is the fp32 run added only
    # as the others' baseline, and the accuracy it costs (parity.accuracy: vs_fp32, vs_reference).
    precision: Precision = "fp32"
    emulated: str = ""
    baseline: bool = False
    accuracy: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The options the timed run chose itself where the user set none (BackendOptions.timing_defaults),
    # as the backend settled them: e.g. {"compile": "fast"} for the cpu backend; shown beside its name.
    timed_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    _summary: tuple[tuple[int, int], Summary] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.samples)

    @property
    def summary(self) -> Summary | None:
        """Statistics of the samples, computed once (the bootstrap is not free, and reports ask often)."""
        if not self.samples:
            return None
        key = (id(self.samples), len(self.samples))
        if self._summary is None or self._summary[0] != key:
            self._summary = (key, summarize(self.samples))
        return self._summary[1]

    @property
    def parity_passed(self) -> bool | None:
        """Whether every output is within the tolerance profile of the reference's."""
        if not self.agreement:
            return None
        return all(a.passed for a in self.agreement)

    @property
    def max_abs_diff(self) -> float | None:
        if not self.agreement:
            return None
        return max(a.max_abs for a in self.agreement)


@dataclasses.dataclass
class BenchResult:
    """Every backend's result on one model, plus what is needed to interpret it later."""

    model: Model
    settings: BenchSettings
    shapes: dict[int, dict[str, tuple[int, ...]]]  # batch -> every input's shape
    results: list[BackendResult]
    reference: str | None = None
    reference_note: str = ""
    reference_error: str = ""  # why an untimed reference gave no outputs
    # batch -> outputs, per input set, of a reference that was not measured (untimed, for comparison)
    reference_set_outputs: dict[int, list[dict[str, np.ndarray]]] = dataclasses.field(default_factory=dict, repr=False)
    interrupted: bool = False
    interrupted_by: str = ""  # the signal that stopped the run: "SIGINT" (Ctrl-C), "SIGTERM", "SIGHUP"
    elapsed_s: float = 0.0
    flops: dict[int, float] = dataclasses.field(default_factory=dict)  # batch -> FLOPs per inference
    peaks: dict[str, float] = dataclasses.field(default_factory=dict)  # peak_key(kind, precision) -> GFLOP/s
    quantization: dict[str, Any] | None = None  # the int8 rows' quantiser settings (Quantized.settings)

    @property
    def mode(self) -> str:
        return "throughput" if self.settings.batches else "latency"

    @property
    def batches(self) -> list[int]:
        return list(self.shapes)

    def baseline_of(self, record: BackendResult) -> BackendResult | None:
        """The same backend's fp32 row on the same device and batch (None for an fp32 row)."""
        if record.precision == "fp32":
            return None
        return next((r for r in self.results if r.precision == "fp32" and r.backend == record.backend
                     and r.device == record.device and r.batch == record.batch), None)

    def fastest(self, batch: int | None = None) -> BackendResult | None:
        done = [r for r in self.results if r.ok and (batch is None or r.batch == batch)]
        return min(done, key=_per_item) if done else None

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON form (schema ``hwkit.bench/2``; see docs/results.md), with
        non-finite numbers as "nan"/"inf" strings, exactly as ``to_json`` writes it."""
        settings = dataclasses.asdict(self.settings)
        settings["threads"] = self.settings.resolved_threads()
        settings["shapes"] = {k: list(v) for k, v in (self.settings.shapes or {}).items()}
        settings["batches"] = list(self.settings.batches or [])
        settings["calibration"] = None if self.settings.calibration is None else str(self.settings.calibration)
        return finite({
            "schema": BENCH_SCHEMA,
            "model": {
                "name": self.model.name,
                "sha256": self.model.sha256,
                "opset": self.model.opset,
                "inputs": [str(s) for s in self.model.inputs],
                "outputs": [str(s) for s in self.model.outputs],
                "shapes": {str(b): {k: list(v) for k, v in s.items()} for b, s in self.shapes.items()},
                "flops": {str(b): f for b, f in (self.flops or {}).items()},
            },
            "mode": self.mode,
            "settings": settings,
            "reference": self.reference,
            "reference_note": self.reference_note,
            "reference_error": self.reference_error,
            "interrupted": self.interrupted,
            "interrupted_by": self.interrupted_by or None,
            "elapsed_s": self.elapsed_s,
            "system": fingerprint(),
            "peaks_gflops": self.peaks,
            "quantization": self.quantization,
            "results": [self._record_dict(r) for r in self.results],
        })

    def _record_dict(self, record: BackendResult) -> dict[str, Any]:
        stats = record.summary if record.ok else None
        fastest = self.fastest(record.batch)
        best = fastest.summary if fastest else None
        flops = self.flops.get(record.batch)
        peak = self.peaks.get(peak_key(record.device_kind, record.precision))
        gflops = flops / stats.median / 1e9 if stats and flops else None
        passed = record.parity_passed
        base = self.baseline_of(record)
        base_stats = base.summary if base is not None and base.ok else None
        return {
            "backend": record.backend,
            "device": record.device,
            "device_kind": record.device_kind,
            "batch": record.batch,
            "precision": record.precision,
            "emulated": record.emulated or None,
            "baseline": record.baseline,
            "quantization": self.quantization if record.precision == "int8" else None,
            "speedup_vs_fp32": base_stats.median / stats.median if stats and base_stats and stats.median else None,
            "accuracy": record.accuracy or None,
            "status": record.status,
            "error": record.error,
            "compile_s": record.compile_s,
            "first_run_s": record.first_run_s,
            "options": record.options,
            "timed_options": record.timed_options or None,
            "versions": record.versions,
            "latency_s": dataclasses.asdict(stats) if stats else None,
            "ci_half_width": stats.ci_half_width if stats else None,
            "items_per_s": record.batch / stats.median if stats else None,
            "vs_fastest": stats.median / best.median if stats and best else None,
            "within_noise": bool(stats and best and record is not fastest and stats.overlaps(best)),
            "gflops_per_s": gflops,
            "percent_of_peak": 100 * gflops / peak if gflops and peak else None,
            "hit_max_time": record.hit_max_time,
            "machine": self._machine_load(record),
            "device_time_s": dataclasses.asdict(summarize(record.device_samples)) if record.device_samples else None,
            "memory": {"rss_before_compile": record.rss_before_compile, "peak_rss": record.peak_rss,
                       "device": record.device_memory},
            "is_reference": record.backend == self.reference and record.precision == "fp32",
            "max_abs_diff": record.max_abs_diff,
            "parity": None if passed is None else ("pass" if passed else "FAIL"),
            "samples_s": record.samples,
            "agreement": [a.to_dict() for a in record.agreement] if record.agreement else None,
        }

    def _machine_load(self, record: BackendResult) -> dict[str, Any]:
        """How free the machine was while this row was measured (``hwkit.measure.load``)."""
        busy = record.others_busy_cores
        usable = usable_cores()
        crowded = busy is not None and busy >= load.BUSY_CORES
        return {"others_busy_cores": busy, "usable_cores": usable, "busy": crowded,
                "threads_that_fit": load.fitting_threads(usable, busy) if crowded and busy is not None else None}

    # Views: each renders the dict above (hwkit.report), never this object.

    def table(self) -> Any:
        """A rich table: one row per backend (and batch size)."""
        return tables.bench_table(self.to_dict())

    def summary_line(self) -> str:
        """How long the answer took and how sure it is."""
        return tables.run_summary(self.to_dict())

    def to_json(self, path: str | None = None) -> str:
        return write_json(self.to_dict(), path)

    def to_csv(self, path: str | None = None) -> str:
        text = files.bench_csv(self.to_dict())
        if path:
            atomic_write(path, text)
        return text

    def to_markdown(self, path: str | None = None) -> str:
        text = files.bench_markdown(self.to_dict())
        if path:
            atomic_write(path, text)
        return text

    def plot(self, path: str) -> None:
        atomic_write(path, plot.bench_png(self.to_dict()))


def peak_key(kind: str, precision: str) -> str:
    """The key of ``BenchResult.peaks`` for a device kind's matmul peak in ``precision``: the kind
    alone for fp32 (as ``hwkit.bench/1`` wrote it), "kind/precision" otherwise ("cpu/bf16")."""
    return kind if precision == "fp32" else f"{kind}/{precision}"


def _per_item(record: BackendResult) -> float:
    summary = record.summary
    return summary.median / record.batch if summary else float("inf")
