"""The measuring loop: the same seeded inputs for every backend, warm-up outside the timed
loop, ``execute`` + ``synchronize`` before the clock is read, and runs until both a minimum
time and a minimum count are reached."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import psutil

from hwkit.api import ModelSource, compile_with, open_model, pick_device, split_target
from hwkit.errors import HwkitError
from hwkit.model import Model
from hwkit.parity import OutputAgreement, compare_outputs
from hwkit.plugins import registry
from hwkit.stats import Summary, summarize

DEFAULT_REFERENCE = "onnxruntime"
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
    max_time: float = 60.0
    threads: int | None = None  # None: default_threads(), the same for every backend
    seed: int = 0
    input_sets: int = 4  # inputs rotate among this many seeded sets so caches do not flatter
    shapes: Mapping[str, Sequence[int]] | None = None
    dims: Mapping[str, int] | None = None
    options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # per backend

    def __post_init__(self) -> None:
        from hwkit.errors import OptionError

        for name in ("warmup_iters", "min_iters", "input_sets"):
            if getattr(self, name) < (1 if name != "warmup_iters" else 0):
                raise OptionError(f"{name} must be >= {1 if name != 'warmup_iters' else 0}")
        for name in ("warmup_time", "min_time", "max_time"):
            if getattr(self, name) < 0:
                raise OptionError(f"{name} must be >= 0 seconds")

    def resolved_threads(self) -> int:
        return self.threads or default_threads()


@dataclasses.dataclass
class BackendResult:
    """What one backend gave: its timings, or why it has none."""

    backend: str
    device: str = ""
    status: str = "ok"  # ok | failed | unavailable | interrupted
    error: str = ""
    compile_s: float | None = None
    first_run_s: float | None = None
    samples: list[float] = dataclasses.field(default_factory=list)
    hit_max_time: bool = False
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    outputs: dict[str, np.ndarray] | None = dataclasses.field(default=None, repr=False)
    agreement: list[OutputAgreement] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.samples)

    @property
    def summary(self) -> Summary | None:
        return summarize(self.samples) if self.samples else None

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
    shapes: dict[str, tuple[int, ...]]
    results: list[BackendResult]
    reference: str | None = None
    interrupted: bool = False

    @property
    def batch(self) -> int:
        """Items per inference: the first input's leading size if that axis is dynamic, else 1."""
        spec = self.model.inputs[0] if self.model.inputs else None
        if spec and spec.shape and not isinstance(spec.shape[0], int):
            return self.shapes[spec.name][0]
        return 1

    def fastest(self) -> BackendResult | None:
        done = [r for r in self.results if r.ok]
        return min(done, key=lambda r: r.summary.median) if done else None  # type: ignore[union-attr]

    def table(self) -> Any:
        from hwkit.report import bench_table

        return bench_table(self)

    def to_dict(self) -> dict[str, Any]:
        from hwkit.report import bench_to_dict

        return bench_to_dict(self)

    def to_json(self, path: str | None = None) -> str:
        from hwkit.report import bench_to_json

        return bench_to_json(self, path)


def make_input_sets(model: Model, settings: BenchSettings) -> tuple[dict[str, tuple[int, ...]], list[dict[str, np.ndarray]]]:
    """The seeded input sets every backend receives, checked once against the model."""
    shapes = model.resolve_shapes(settings.shapes, settings.dims)
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
    settings = dataclasses.replace(settings or BenchSettings(), **overrides)
    model = open_model(model)
    shapes, input_sets = make_input_sets(model, settings)
    targets = list(backends) if backends else available_backends()
    result = BenchResult(model, settings, shapes, [])
    for target in targets:
        name, device = split_target(target)
        registry().get(name)  # unknown names fail here, before anything is measured
    for target in targets:
        record = BackendResult(backend=split_target(target)[0])
        result.results.append(record)
        try:
            measure(model, target, input_sets, settings, record, progress)
        except KeyboardInterrupt:
            record.status, record.error = "interrupted", "interrupted by the user"
            result.interrupted = True
            break
        except HwkitError as e:
            record.status, record.error = "failed", str(e)
    attach_agreement(result)
    return result


def available_backends() -> list[str]:
    return [name for name, info in sorted(registry().backends.items()) if info.status == "available"]


def measure(
    model: Model,
    target: str,
    input_sets: Sequence[Mapping[str, np.ndarray]],
    settings: BenchSettings,
    record: BackendResult,
    progress: Progress | None = None,
) -> BackendResult:
    """Compile and time one backend into ``record`` (which keeps partial results on error)."""
    name, device_name = split_target(target)
    report = progress or (lambda *_: None)
    info = registry().get(name)
    device = pick_device(info, device_name)
    record.device = device.name
    assert info.backend is not None
    options = {"threads": settings.resolved_threads(), **settings.options.get(name, {})}
    parsed = info.backend.Options.parse(options, backend=name)
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
              lambda f: report(name, "warm-up", f))
        record.samples, record.hit_max_time = _loop(
            run, sync, input_sets, settings.min_iters, settings.min_time, settings.max_time,
            lambda f: report(name, "measure", f),
        )
    report(name, "done", 1.0)
    return record


def _loop(
    run: Callable[[Any], Any],
    sync: Callable[[], None],
    input_sets: Sequence[Any],
    min_iters: int,
    min_time: float,
    max_time: float,
    progress: Callable[[float], None],
) -> tuple[list[float], bool]:
    """Run until both min_iters and min_time are reached, or max_time passes.

    Each sample is execute + synchronize between two clock reads; nothing else is timed.
    """
    clock = time.perf_counter
    samples: list[float] = []
    append = samples.append
    count = len(input_sets)
    begin = last_report = clock()
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
            return samples, False
        if elapsed >= max_time:
            return samples, True
        if t1 - last_report > 0.1:
            last_report = t1
            progress(min(1.0, min(i / max(min_iters, 1), elapsed / min_time if min_time else 1.0)))


def attach_agreement(result: BenchResult) -> None:
    """Compare every backend's outputs on the first input set with the reference backend's."""
    done = [r for r in result.results if r.outputs is not None]
    if not done:
        return
    preferred = result.reference or DEFAULT_REFERENCE
    reference = next((r for r in done if r.backend == preferred), done[0])
    result.reference = reference.backend
    for record in done:
        record.agreement = compare_outputs(reference.outputs or {}, record.outputs or {})
