"""The greedy loop and the job functions a launcher runs (in this process or a child of its own),
one job per backend that compiles once and fills every row (prompt length × batch) of it:
``measure`` (bench: warm-up, then timed generations) and ``outputs`` (check: one generation,
with the last position's logits of every step).

A generation is a prefill over the prompt (its time, with the argmax, is the time to first
token), then one step per further token, each feeding the previous token with the cache. Only
``session.step`` and the argmax lie between the clock reads; the feeds of a step (token, mask,
positions) are built inside too, as any generation loop must.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from hwkit.api import compile_with, resolve, split_target
from hwkit.backend import StepSession
from hwkit.errors import BackendOutputError, ExecutionError, HwkitError
from hwkit.generate import convention
from hwkit.generate.records import GenerateJob, GenerateRecord
from hwkit.generate.session import open_session
from hwkit.generate.settings import GenerateSettings
from hwkit.model import Model
from hwkit.runner.launch import Progress
from hwkit.runner.record import record_failure


@dataclasses.dataclass
class Generation:
    """One greedy generation: tokens [batch, new], the prefill's and each step's seconds, and
    the last position's logits per step when kept."""

    tokens: np.ndarray
    prefill_s: float
    step_s: list[float]
    logits: list[np.ndarray]
    cache_bytes: int


def greedy(session: StepSession, conv: convention.Convention, prompt: np.ndarray, new: int,
           keep_logits: bool = False) -> Generation:
    """Generate ``new`` tokens after ``prompt`` [batch, length] with ``session``."""
    clock = time.perf_counter
    start = clock()
    try:
        logits = session.step(conv.feeds(prompt, 0))["logits"]
    except ExecutionError as e:
        raise ExecutionError(f"the prefill of {prompt.shape[1]} tokens failed (a prompt longer than the model's "
                             f"context fails so: try a shorter --prompt): {e}") from e
    token = logits[:, -1].argmax(-1)
    prefill = clock() - start
    _check_logits(logits, prompt.shape)
    kept = [logits[:, -1].copy()] if keep_logits else []
    tokens = [token]
    steps: list[float] = []
    past = prompt.shape[1]
    for _ in range(new - 1):
        start = clock()
        logits = session.step(conv.feeds(token[:, None], past))["logits"]
        token = logits[:, -1].argmax(-1)
        steps.append(clock() - start)
        past += 1
        tokens.append(token)
        if keep_logits:
            kept.append(logits[:, -1].copy())
    return Generation(np.stack(tokens, axis=1).astype(np.int64), prefill, steps, kept, session.state_bytes())


def measure(model: Model, target: str, record: GenerateJob, progress: Progress | None = None, *,
            prompts: Mapping[int, np.ndarray], settings: GenerateSettings) -> GenerateJob:
    """Compile once, then for each row: warm up, time ``settings.runs`` generations."""
    report = progress or (lambda *_: None)
    name = split_target(target)[0]
    with _compiled(model, target, record, settings) as (exe, conv):
        for number, row in enumerate(record.rows):
            report(name, f"prompt {row.prompt}, batch {row.batch}", number / len(record.rows))
            with _row(record, row):
                prompt = prompts[row.prompt][:row.batch]
                for i in range(settings.warmup + settings.runs):
                    warm = i < settings.warmup
                    # The whole length: a runtime may pay once per new shape (each past length is one),
                    # and the timed runs should see the steady state, not those first encounters.
                    generation = _generate(exe, conv, prompt, settings.new, settings.native, row, keep_logits=False)
                    if warm:
                        continue
                    if row.tokens is None:
                        row.tokens = generation.tokens.tolist()
                    row.prefill_s.append(generation.prefill_s)
                    row.step_s.extend(generation.step_s)
                    row.decode_s.append(sum(generation.step_s))
                    row.cache_bytes = generation.cache_bytes
                row.device_memory = dict(exe.memory_stats())
    report(name, "done", 1.0)
    return record


def outputs(model: Model, target: str, record: GenerateJob, progress: Progress | None = None, *,
            prompts: Mapping[int, np.ndarray], settings: GenerateSettings) -> GenerateJob:
    """Compile once, then one untimed generation per row, keeping the tokens and every step's
    last-position logits."""
    report = progress or (lambda *_: None)
    name = split_target(target)[0]
    with _compiled(model, target, record, settings) as (exe, conv):
        for number, row in enumerate(record.rows):
            report(name, f"prompt {row.prompt}, batch {row.batch}", number / len(record.rows))
            with _row(record, row):
                prompt = prompts[row.prompt][:row.batch]
                generation = _generate(exe, conv, prompt, settings.new, settings.native, row, keep_logits=True)
                row.tokens = generation.tokens.tolist()
                row.logits = np.stack(generation.logits)  # [step, batch, vocab]
                row.cache_bytes = generation.cache_bytes
    report(name, "done", 1.0)
    return record


@contextlib.contextmanager
def _row(job: GenerateJob, row: GenerateRecord) -> Iterator[None]:
    """One row of the job: where it ran, and a hwkit error as that row's failure (the next rows
    still run: a batch too large for memory costs only its own row)."""
    row.device, row.device_kind, row.options, row.versions = job.device, job.device_kind, job.options, job.versions
    row.compile_s = job.compile_s
    try:
        yield
    except HwkitError as e:
        record_failure(row, e)


class _compiled:
    """Resolve and compile ``target`` into ``record`` (options, versions, compile time)."""

    def __init__(self, model: Model, target: str, record: GenerateJob, settings: GenerateSettings) -> None:
        self.model, self.target, self.record, self.settings = model, target, record, settings

    def __enter__(self) -> tuple[Any, convention.Convention]:
        conv = convention.read(self.model)
        name = split_target(self.target)[0]
        info, device, parsed = resolve(self.target, self.settings.backend_options(name))
        self.record.device, self.record.device_kind = device.name, device.kind
        self.record.options = dataclasses.asdict(parsed)
        self.record.versions = info.versions()
        start = time.perf_counter()
        self.exe = compile_with(info, self.model, device, parsed)
        self.record.compile_s = time.perf_counter() - start
        return self.exe, conv

    def __exit__(self, *exc: object) -> None:
        self.exe.close()


def _generate(exe: Any, conv: convention.Convention, prompt: np.ndarray, new: int, native: bool,
              record: GenerateRecord, keep_logits: bool) -> Generation:
    """One generation of ``new`` tokens in a fresh session (an empty cache)."""
    session, where = open_session(exe, conv.cache, conv.empty_cache(prompt.shape[0]), ["logits"], native)
    record.cache = where
    try:
        return greedy(session, conv, prompt, new, keep_logits)
    finally:
        session.close()


def _check_logits(logits: Any, prompt: tuple[int, ...]) -> None:
    """Once per generation, outside the clock: logits must be [batch, sequence, vocab]."""
    shape = getattr(logits, "shape", None)
    if shape is None or len(shape) != 3 or tuple(shape[:2]) != tuple(prompt):
        raise BackendOutputError(f"logits must be [batch, sequence, vocab] = [{prompt[0]}, {prompt[1]}, vocab] at the "
                                 f"prefill; the backend returned shape {shape}")
