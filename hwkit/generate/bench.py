"""``bench_generate()``: greedy generation on every chosen backend with the same seeded prompt
tokens, each backend in a launcher of its own (a child process by default), one record per
(backend, precision, prompt length, batch).

Each backend is one job (one compile, every prompt length and batch size as a row), so the loop
here is over targets. Later axes go here: a precision list makes one job per (backend,
precision) with ``settings.precision`` set (each row already carries its precision, and the
reference is matched per precision), and a fleet is one more ``Launcher``; neither changes the
job functions.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwkit.api import ModelSource, split_target
from hwkit.generate import convention
from hwkit.generate.records import GenerateJob, GenerateRecord, GenerateResult
from hwkit.generate.settings import GenerateSettings
from hwkit.measure import load
from hwkit.model import Model
from hwkit.runner.launch import Job, Progress, Stopped, launcher
from hwkit.runner.plan import Plan, plan

MEASURE = "hwkit.generate.loop:measure"
OUTPUTS = "hwkit.generate.loop:outputs"


def prepare(model: ModelSource, backends: Sequence[str] | None, reference: str | None,
            settings: GenerateSettings) -> tuple[Plan, dict[int, np.ndarray]]:
    """The plan, checked for generation before anything runs, and the seeded prompt tokens per
    prompt length: [largest batch, length], every batch size taking its first rows, so batch 1
    is row 0 of batch 4."""
    run = plan(model, backends, reference)
    conv = convention.read(run.model)
    for length in settings.prompts:
        conv.check_length(length, settings.new)
    high = convention.token_range(run.model, conv)
    widest = max(settings.batches)
    prompts = {}
    for length in settings.prompts:
        rng = np.random.default_rng([settings.seed, length])
        prompts[length] = rng.integers(0, high, size=(widest, length), dtype=np.int64)
    return run, prompts


def job(function: str, model: Model, target: str, settings: GenerateSettings,
        prompts: dict[int, np.ndarray]) -> tuple[Job, GenerateJob]:
    """One backend's job: every (prompt length, batch) row, compiled once."""
    name, device = split_target(target)
    rows = [GenerateRecord(backend=name, device=device or "", precision=settings.precision, prompt=length,
                           batch=batch, new=settings.new) for length in prompts for batch in settings.batches]
    holder = GenerateJob(backend=name, device=device or "", rows=rows)
    return Job(function, model, target, holder, {"prompts": prompts, "settings": settings},
               settings.resolved_threads(), settings.timeout), holder


def run_jobs(function: str, model: Model, targets: Sequence[str], settings: GenerateSettings,
             prompts: dict[int, np.ndarray], progress: Progress | None, rows: list[GenerateRecord]) -> None:
    """Launch each target's job, adding its rows to ``rows`` as they come back."""
    where = launcher(settings.isolation)
    for target in targets:
        task, holder = job(function, model, target, settings, prompts)
        before = load.snapshot()
        try:
            where.launch(task, progress)  # fills ``holder`` (a child's copy comes back into it)
        finally:  # on Ctrl-C too: the rows of the stopped backend say so
            holder.others_busy_cores = load.others_busy_cores(before, load.snapshot())
            rows.extend(holder.settle())


def bench_generate(model: ModelSource, backends: Sequence[str] | None = None,
                   settings: GenerateSettings | None = None, progress: Progress | None = None,
                   reference: str | None = None, **overrides: Any) -> GenerateResult:
    """Time greedy generation of ``model`` on each backend (default: every available one).

    A backend that fails is recorded with its error and the others go on. Ctrl-C (or a
    ``Stopped`` signal) stops the run and returns what was measured so far.
    """
    started = time.perf_counter()
    settings = dataclasses.replace(settings or GenerateSettings(), **overrides)
    run, prompts = prepare(model, backends, reference, settings)
    result = GenerateResult(run.model, settings, [], reference=split_target(run.reference)[0],
                            reference_note=run.reference_note)
    try:
        run_jobs(MEASURE, run.model, run.targets, settings, prompts, progress, result.results)
    except KeyboardInterrupt as stop:
        result.interrupted = True
        result.interrupted_by = stop.name if isinstance(stop, Stopped) else "SIGINT"
        for record in result.results:
            if record.status == "ok" and not record.prefill_s:
                record.status, record.error = "interrupted", f"stopped by {result.interrupted_by}"
    result.elapsed_s = time.perf_counter() - started
    return result
