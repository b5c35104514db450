"""The timed loop: compile, one first run (its outputs checked against the model's declared
outputs, outside the clock), warm-up outside the clock, then ``execute`` + ``synchronize``
between two clock reads until the minimums (and the CI target) are met.

``measure`` is a job function: a launcher calls it in this process or in a child of its own.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hwkit.api import compile_with, resolve, split_target
from hwkit.backend import DeviceTimer
from hwkit.measure.records import BackendResult
from hwkit.measure.settings import BenchSettings
from hwkit.measure.stats import order_statistic_half_width
from hwkit.model import Model
from hwkit.model.specs import check_outputs
from hwkit.runner.launch import Progress

CI_CHECK_S = 0.25
DEVICE_TIMER_RUNS = 20  # extra runs timed by the device's own clock, after the wall-clock ones


def measure(
    model: Model,
    target: str,
    record: BackendResult,
    progress: Progress | None = None,
    *,
    input_sets: Sequence[Mapping[str, np.ndarray]],
    settings: BenchSettings,
) -> BackendResult:
    """Compile and time one backend into ``record`` (which keeps partial results on error)."""
    name = split_target(target)[0]
    report = progress or (lambda *_: None)
    given = settings.backend_options(name)
    info, device, parsed = resolve(target, given)
    parsed = parsed.timed(given)  # e.g. the cpu backend's compile=auto (BackendOptions.timing_defaults)
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
        record.options = dataclasses.asdict(exe.options)  # as the backend settled them (e.g. compile=auto)
        record.timed_options = {k: record.options[k] for k in parsed.timing_defaults if k not in given}
        # Once, outside the clock: a backend whose outputs are not the model's has no row to time.
        check_outputs(model.outputs, outputs, target, model.inputs, input_sets[0])
        record.outputs = outputs = _kept(outputs, sync)
        # Every other set once, outside the clock (they count as warm-up), for the accuracy columns.
        record.set_outputs = [outputs] + [_kept(run(inputs), sync) for inputs in input_sets[1:]]
        _loop(run, sync, input_sets, settings.warmup_iters, settings.warmup_time, settings.max_time,
              None, lambda f: report(name, "warm-up", f))
        record.samples, record.hit_max_time = _loop(
            run, sync, input_sets, settings.min_iters, settings.min_time, settings.max_time,
            settings.target_ci, lambda f: report(name, "measure", f),
        )
        if isinstance(exe, DeviceTimer):
            record.device_samples = [exe.device_time(input_sets[i % len(input_sets)]) for i in range(DEVICE_TIMER_RUNS)]
        record.device_memory = dict(exe.memory_stats())
    report(name, "done", 1.0)
    return record


def _kept(outputs: Any, sync: Callable[[], None]) -> dict[str, Any]:
    """Outputs that later runs cannot change: a backend may hand out views of buffers it reuses."""
    sync()
    return {name: value.copy() if isinstance(value, np.ndarray) else copy.deepcopy(value)
            for name, value in outputs.items()}


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
