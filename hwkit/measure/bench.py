"""The measuring loop: the same seeded inputs for every backend, warm-up outside the timed
loop, ``execute`` + ``synchronize`` before the clock is read, and runs until both a minimum
time and a minimum count are reached."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import psutil

from hwkit.api import ModelSource, compile_with, open_model, resolve, split_target
from hwkit.errors import BackendUnavailableError, HwkitError, OptionError
from hwkit.model.model import Model
from hwkit.parity.agreement import OutputAgreement, compare_outputs
from hwkit.parity.tolerance import tolerance
from hwkit.plugins import registry
from hwkit.measure.stats import Summary, order_statistic_half_width, summarize

DEFAULT_REFERENCE = "onnxruntime"
CI_CHECK_S = 0.25
PEAK_KINDS = ("cpu", "gpu")  # device kinds hwkit peak can measure (torch on the CPU, torch.cuda)
DEVICE_TIMER_RUNS = 20  # extra runs timed by the device's own clock, after the wall-clock ones
Progress = Callable[[str, str, float], None]  # (backend, phase, fraction done)


def default_threads() -> int:
    """Physical cores this process may use: one value given to every backend."""
    usable = len(psutil.Process().cpu_affinity() or []) if hasattr(psutil.Process, "cpu_affinity") else 0
    physical = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    return max(1, min(physical, usable) if usable else physical)


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """How to measure. Timed runs continue until BOTH min_iters and min_time are reached
    (or max_time passes, which the result then states)."""

    warmup_iters: int = 10
    warmup_time: float = 0.5
    min_iters: int = 30
    min_time: float = 2.0
    max_time: float = 15.0  # per backend and batch; the result says when it stopped timing here
    target_ci: float | None = 0.02  # keep timing past the minimums until the median's 95% CI is ±2%
    threads: int | None = None  # None: default_threads(), the same for every backend
    seed: int = 0
    input_sets: int = 4  # inputs rotate among this many seeded sets so caches do not flatter
    shapes: Mapping[str, Sequence[int]] | None = None
    dims: Mapping[str, int] | None = None
    options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # per backend
    batches: Sequence[int] | None = None  # throughput sweep over the dynamic batch dimension
    isolation: bool = True  # each backend in a process of its own
    efficiency: bool = True  # count FLOPs and compare with the measured matmul peak
    precision: str = "fp32"  # the tolerance profile outputs are judged by (see docs/parity.md)
    timeout: float = 600.0  # seconds a backend may take (compile + runs) before it is stopped

    def __post_init__(self) -> None:
        for name in ("warmup_iters", "min_iters", "input_sets"):
            if getattr(self, name) < (1 if name != "warmup_iters" else 0):
                raise OptionError(f"{name} must be >= {1 if name != 'warmup_iters' else 0}")
        tolerance(self.precision)  # an unknown profile fails here, before anything runs
        if any(b < 1 for b in self.batches or ()):
            raise OptionError("batch sizes must be >= 1")
        for name in ("warmup_time", "min_time", "max_time", "timeout"):
            if getattr(self, name) < 0:
                raise OptionError(f"{name} must be >= 0 seconds")

    def resolved_threads(self) -> int:
        return self.threads or default_threads()


@dataclasses.dataclass
class BackendResult:
    """What one backend gave: its timings, or why it has none."""

    backend: str
    device: str = ""
    device_kind: str = "cpu"  # the Device's kind: which measured peak "% of peak" uses
    batch: int = 1
    status: str = "ok"  # ok | failed | crashed | timeout | interrupted
    error: str = ""
    compile_s: float | None = None
    first_run_s: float | None = None
    samples: list[float] = dataclasses.field(default_factory=list)
    hit_max_time: bool = False
    rss_before_compile: int | None = None  # bytes, the backend's own process (isolated runs)
    peak_rss: int | None = None
    device_memory: dict[str, int] = dataclasses.field(default_factory=dict)
    device_samples: list[float] = dataclasses.field(default_factory=list)  # device-timer seconds
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    outputs: dict[str, np.ndarray] | None = dataclasses.field(default=None, repr=False)
    agreement: list[OutputAgreement] | None = None
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
    interrupted: bool = False
    elapsed_s: float = 0.0
    flops: dict[int, float] = dataclasses.field(default_factory=dict)  # batch -> FLOPs per inference
    peaks: dict[str, float] = dataclasses.field(default_factory=dict)  # device kind -> GFLOP/s

    @property
    def mode(self) -> str:
        return "throughput" if self.settings.batches else "latency"

    @property
    def batches(self) -> list[int]:
        return list(self.shapes)

    def fastest(self, batch: int | None = None) -> BackendResult | None:
        done = [r for r in self.results if r.ok and (batch is None or r.batch == batch)]
        return min(done, key=lambda r: r.summary.median / r.batch) if done else None  # type: ignore[union-attr]

    def reference_record(self, batch: int) -> BackendResult | None:
        return next((r for r in self.results if r.backend == self.reference and r.batch == batch), None)

    def table(self) -> Any:
        from hwkit.report.tables import bench_table

        return bench_table(self)

    def to_dict(self) -> dict[str, Any]:
        from hwkit.report.tables import bench_to_dict

        return bench_to_dict(self)

    def to_json(self, path: str | None = None) -> str:
        from hwkit.report.tables import bench_to_json

        return bench_to_json(self, path)

    def to_csv(self, path: str | None = None) -> str:
        from hwkit.report.tables import bench_to_csv

        return bench_to_csv(self, path)

    def to_markdown(self, path: str | None = None) -> str:
        from hwkit.report.tables import bench_to_markdown

        return bench_to_markdown(self, path)

    def plot(self, path: str) -> None:
        from hwkit.report.plot import plot_bench

        plot_bench(self, path)


def batch_dim(model: Model) -> str | None:
    """The symbolic name of the first input's leading axis: the batch a sweep varies."""
    spec = model.inputs[0] if model.inputs else None
    if spec and spec.shape and isinstance(spec.shape[0], str):
        return spec.shape[0]
    return None


def make_input_sets(
    model: Model, settings: BenchSettings, batch: int | None = None
) -> tuple[dict[str, tuple[int, ...]], list[dict[str, np.ndarray]]]:
    """The seeded input sets every backend receives, checked once against the model."""
    dims = dict(settings.dims or {})
    if batch is not None:
        name = batch_dim(model)
        if name is None:
            first = model.inputs[0] if model.inputs else None
            raise OptionError(
                f"--batch needs a model whose first input has a dynamic leading dimension; "
                f"{first or 'this model'} has none (re-export with a dynamic batch axis)"
            )
        dims[name] = batch
    shapes = model.resolve_shapes(settings.shapes, dims)
    sets = [
        model.check_inputs(model.make_inputs(shapes, seed=settings.seed + k))
        for k in range(settings.input_sets)
    ]
    return shapes, sets


def bench(
    model: ModelSource,
    backends: Sequence[str] | None = None,
    settings: BenchSettings | None = None,
    progress: Progress | None = None,
    **overrides: Any,
) -> BenchResult:
    """Measure ``model`` on each backend (default: every available one) under equal conditions.

    Args:
        model: a Model, ModelProto, bytes, an .onnx path or a built-in model's name.
        backends: names, optionally with a device ("openvino:GPU").
        settings: how to measure; keyword ``overrides`` replace single fields of it.
        progress: called with (backend, phase, fraction) while it works.

    A backend that fails is recorded with its error and the others go on; Ctrl-C stops the run
    and returns what was measured so far with ``interrupted`` set.
    """
    started = time.perf_counter()
    settings = dataclasses.replace(settings or BenchSettings(), **overrides)
    model = open_model(model)
    targets = list(backends) if backends else available_backends()
    if not targets:
        raise BackendUnavailableError("no backend is available here; see 'hwkit backends' for why")
    for target in targets:
        registry().get(split_target(target)[0])  # unknown names fail here, before measuring
    batches = list(settings.batches) if settings.batches else [None]
    plans = [(b, *make_input_sets(model, settings, b)) for b in batches]  # bad shapes fail now too
    shapes = {(b if b is not None else _leading(model, s)): s for b, s, _ in plans}
    result = BenchResult(model, settings, shapes, [], reference=settings_reference(targets))
    try:
        for (batch, _, input_sets), key in zip(plans, shapes):
            for target in targets:
                name, device = split_target(target)
                record = BackendResult(backend=name, device=device or "", batch=key)
                result.results.append(record)
                _measure_one(model, target, input_sets, settings, record, progress)
    except KeyboardInterrupt:
        result.interrupted = True
        for record in result.results:
            if record.status == "ok" and not record.samples:
                record.status, record.error = "interrupted", "interrupted by the user (Ctrl-C)"
    attach_agreement(result)
    if settings.efficiency and not result.interrupted:
        attach_efficiency(result)
    result.elapsed_s = time.perf_counter() - started
    return result


def attach_efficiency(result: BenchResult) -> None:
    """FLOPs per inference at each batch size, and the peak of each device kind that ran."""
    from hwkit.model.flops import count_flops
    from hwkit.measure.peak import peak_gflops

    for batch, shapes in result.shapes.items():
        flops = count_flops(result.model, shapes)
        if flops:
            result.flops[batch] = flops
    if not result.flops:
        return
    threads = result.settings.resolved_threads()
    for kind in sorted({r.device_kind for r in result.results if r.ok and r.device_kind in PEAK_KINDS}):
        achieved = max(result.flops.get(r.batch, 0.0) / r.summary.median / 1e9  # type: ignore[union-attr]
                       for r in result.results if r.ok and r.device_kind == kind)
        try:
            peak = peak_gflops(kind, threads)["gflops"]
            if achieved > peak:  # a peak cached on a busy machine: measure it again, keep the best
                peak = max(peak, peak_gflops(kind, threads, refresh=True)["gflops"])
            result.peaks[kind] = peak
        except HwkitError as e:  # the speed figures stand without it; say why % of peak is empty
            warnings.warn(f"no % of peak for {kind}: {e}", stacklevel=2)


def _measure_one(model: Model, target: str, input_sets: Sequence[Mapping[str, np.ndarray]],
                 settings: BenchSettings, record: BackendResult, progress: Progress | None) -> None:
    """One backend at one batch size; failures become the record's status, never the run's end."""
    if settings.isolation:
        from hwkit.runner.launch import run_isolated

        run_isolated(model, target, input_sets, settings, record, progress)
        return
    try:
        measure(model, target, input_sets, settings, record, progress)
    except Exception as e:  # recorded: one backend's failure is never the run's end
        record_failure(record, e)


def record_failure(record: BackendResult, error: Exception) -> None:
    """A backend's failure as its record's status. A non-hwkit exception is a plugin bug: its type
    is named so the plugin's author can find it."""
    record.status = "failed"
    record.error = str(error) if isinstance(error, HwkitError) else f"{type(error).__name__}: {error}"


def settings_reference(targets: Sequence[str]) -> str:
    """The backend whose outputs the others are compared with: onnxruntime if chosen, else the first."""
    names = [split_target(t)[0] for t in targets]
    return DEFAULT_REFERENCE if DEFAULT_REFERENCE in names else names[0]


def _leading(model: Model, shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Items per inference without a sweep: the batch dimension's size, else 1."""
    spec = model.inputs[0] if model.inputs else None
    if spec and batch_dim(model) and shapes[spec.name]:
        return shapes[spec.name][0]
    return 1


def available_backends() -> list[str]:
    """Backends a run without ``-b`` uses: available, and not marked as too slow by default."""
    return [
        name for name, info in sorted(registry().backends.items())
        if info.status == "available" and info.backend is not None and info.backend.in_default_runs
    ]


def measure(
    model: Model,
    target: str,
    input_sets: Sequence[Mapping[str, np.ndarray]],
    settings: BenchSettings,
    record: BackendResult,
    progress: Progress | None = None,
) -> BackendResult:
    """Compile and time one backend into ``record`` (which keeps partial results on error)."""
    name = split_target(target)[0]
    report = progress or (lambda *_: None)
    options = {"threads": settings.resolved_threads(), **settings.options.get(name, {})}
    info, device, parsed = resolve(target, options)
    record.device, record.device_kind = device.name, device.kind
    record.options = dataclasses.asdict(parsed)
    record.versions = info.versions()
    report(name, "compile", 0.0)
    clock = time.perf_counter
    start = clock()
    with compile_with(info, model, device, parsed) as exe:
        record.compile_s = clock() - start
        run, sync = exe.execute, exe.synchronize
        start = clock()
        outputs = run(input_sets[0])
        sync()
        record.first_run_s = clock() - start
        record.outputs = outputs
        _loop(run, sync, input_sets, settings.warmup_iters, settings.warmup_time, settings.max_time,
              None, lambda f: report(name, "warm-up", f))
        record.samples, record.hit_max_time = _loop(
            run, sync, input_sets, settings.min_iters, settings.min_time, settings.max_time,
            settings.target_ci, lambda f: report(name, "measure", f),
        )
        device_time = getattr(exe, "device_time", None)  # the capability "device_timer" (CUDA events)
        if callable(device_time):
            record.device_samples = [device_time(input_sets[i % len(input_sets)]) for i in range(DEVICE_TIMER_RUNS)]
        record.device_memory = dict(exe.memory_stats())
    report(name, "done", 1.0)
    return record


def _loop(
    run: Callable[[Any], Any],
    sync: Callable[[], None],
    input_sets: Sequence[Any],
    min_iters: int,
    min_time: float,
    max_time: float,
    target_ci: float | None,
    progress: Callable[[float], None],
) -> tuple[list[float], bool]:
    """Run until both min_iters and min_time are reached and, with a target, the median's CI
    is that narrow; or until max_time passes (returned as True: the target was not met).

    Each sample is execute + synchronize between two clock reads; nothing else is timed. The
    CI is checked between samples, at most every CI_CHECK_S, with the cheap order-statistic
    interval (the reported one is the bootstrap's, which agrees with it).
    """
    clock = time.perf_counter
    samples: list[float] = []
    append = samples.append
    count = len(input_sets)
    begin = last_report = clock()
    last_check = 0.0
    i = 0
    while True:
        inputs = input_sets[i % count]
        t0 = clock()
        run(inputs)
        sync()
        t1 = clock()
        append(t1 - t0)
        i += 1
        elapsed = t1 - begin
        if i >= min_iters and elapsed >= min_time:
            if target_ci is None:
                return samples, False
            if t1 - last_check >= CI_CHECK_S:
                last_check = t1
                if order_statistic_half_width(samples) <= target_ci:
                    return samples, False
        if elapsed >= max_time:
            return samples, True
        if t1 - last_report > 0.1:
            last_report = t1
            progress(min(1.0, min(i / max(min_iters, 1), elapsed / min_time if min_time else 1.0)))


def attach_agreement(result: BenchResult) -> None:
    """Compare every backend's outputs on the first input set with the reference backend's,
    batch by batch. Without the reference's outputs there is nothing to compare with."""
    tol = tolerance(result.settings.precision)
    for batch in result.batches:
        reference = result.reference_record(batch)
        if reference is None or reference.outputs is None:
            continue
        for record in result.results:
            if record.batch == batch and record.outputs is not None:
                record.agreement = compare_outputs(reference.outputs, record.outputs, tol)
