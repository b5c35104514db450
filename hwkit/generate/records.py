"""What ``bench --generate`` produced: one ``GenerateRecord`` per (backend, precision, prompt
length, batch), gathered in a ``GenerateResult`` whose ``to_dict`` computes every figure once as
the documented ``hwkit.generate/1`` dict (docs/results.md); the views render that dict."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

import numpy as np

from hwkit._files import atomic_write, finite, write_json
from hwkit.generate.settings import GenerateSettings
from hwkit.generate.views import bench_markdown, bench_png, bench_table
from hwkit.measure import load
from hwkit.measure.stats import summarize
from hwkit.model import Model
from hwkit.runner.record import RunRecord
from hwkit.system import fingerprint, usable_cores

GENERATE_SCHEMA = "hwkit.generate/1"


@dataclasses.dataclass
class GenerateRecord(RunRecord):
    """One backend's generations at one (precision, prompt length, batch)."""

    device_kind: str = "cpu"
    precision: str = "fp32"
    prompt: int = 0
    batch: int = 1
    new: int = 0
    cache: str = ""  # where the KV cache lived: "native" (the runtime's values) or "numpy"
    compile_s: float | None = None
    prefill_s: list[float] = dataclasses.field(default_factory=list)  # per timed run: time to first token
    step_s: list[float] = dataclasses.field(default_factory=list)  # every decode step of every timed run
    decode_s: list[float] = dataclasses.field(default_factory=list)  # per timed run: all its decode steps
    cache_bytes: int | None = None  # the KV cache at the end of a generation
    others_busy_cores: float | None = None  # other processes' average busy cores during its job
    device_memory: dict[str, int] = dataclasses.field(default_factory=dict)
    tokens: list[list[int]] | None = None  # [batch][new], greedy, from the first generation
    logits: np.ndarray | None = dataclasses.field(default=None, repr=False)  # check: [step, batch, vocab]

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.prefill_s or self.logits is not None)


def row_order(row: GenerateRecord) -> tuple[str, int, int]:
    """Rows by precision, prompt length and batch; backends in the order they ran."""
    return row.precision, row.prompt, row.batch


@dataclasses.dataclass
class GenerateJob(RunRecord):
    """One backend's share of a run: compiled once, it fills every row (``settle`` hands the
    job's fate and process figures on to rows it could not fill)."""

    device_kind: str = "cpu"
    compile_s: float | None = None
    others_busy_cores: float | None = None  # other processes' average busy cores during the job
    rows: list[GenerateRecord] = dataclasses.field(default_factory=list)

    def settle(self) -> list[GenerateRecord]:
        for row in self.rows:
            row.peak_rss, row.rss_before_compile = self.peak_rss, self.rss_before_compile
            row.others_busy_cores = self.others_busy_cores
            if not row.device:
                row.device, row.device_kind = self.device, self.device_kind
            if self.status != "ok" and row.status == "ok" and not row.prefill_s and row.logits is None:
                row.status, row.error, row.error_type = self.status, self.error, self.error_type
        return self.rows


@dataclasses.dataclass
class GenerateResult:
    """Every backend's generations on one model, plus what is needed to read them later."""

    model: Model
    settings: GenerateSettings
    results: list[GenerateRecord]
    reference: str | None = None
    reference_note: str = ""
    interrupted: bool = False
    interrupted_by: str = ""
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        settings = dataclasses.asdict(self.settings)
        settings.update(threads=self.settings.resolved_threads(), prompts=list(self.settings.prompts),
                        batches=list(self.settings.batches))
        return finite({
            "schema": GENERATE_SCHEMA,
            "model": {"name": self.model.name, "sha256": self.model.sha256, "opset": self.model.opset,
                      "inputs": [str(s) for s in self.model.inputs], "outputs": [str(s) for s in self.model.outputs]},
            "settings": settings,
            "reference": self.reference,
            "reference_note": self.reference_note,
            "interrupted": self.interrupted,
            "interrupted_by": self.interrupted_by or None,
            "elapsed_s": self.elapsed_s,
            "system": fingerprint(),
            "results": [self._record_dict(r) for r in sorted(self.results, key=row_order)],
        })

    def _record_dict(self, r: GenerateRecord) -> dict[str, Any]:
        ttft = summarize(r.prefill_s) if r.prefill_s else None
        step = summarize(r.step_s) if r.step_s else None
        steps_per_run = r.new - 1
        decode = [r.batch * steps_per_run / s for s in r.decode_s if s > 0] if steps_per_run else []
        whole = [r.batch * r.new / (p + d) for p, d in zip(r.prefill_s, r.decode_s)]
        return {
            "backend": r.backend, "device": r.device, "device_kind": r.device_kind, "precision": r.precision,
            "prompt": r.prompt, "batch": r.batch, "new": r.new, "status": r.status, "error": r.error,
            "cache": r.cache, "compile_s": r.compile_s, "options": r.options, "versions": r.versions,
            "ttft_s": dataclasses.asdict(ttft) if ttft else None,
            "decode_step_s": dataclasses.asdict(step) if step else None,
            "decode_ci_half_width": step.ci_half_width if step else None,
            "decode_tokens_per_s": statistics.median(decode) if decode else None,
            "end_to_end_tokens_per_s": statistics.median(whole) if whole else None,
            "memory": {"rss_before_compile": r.rss_before_compile, "peak_rss": r.peak_rss,
                       "kv_cache_bytes": r.cache_bytes, "device": r.device_memory},
            "machine": _machine(r.others_busy_cores),
            "is_reference": r.backend == self.reference,
            "same_tokens": self._same_tokens(r),
            "tokens": r.tokens,
            "samples": {"ttft_s": r.prefill_s, "decode_step_s": r.step_s, "decode_run_s": r.decode_s},
        }

    def _same_tokens(self, r: GenerateRecord) -> bool | None:
        """Whether this row generated the reference's tokens (None for the reference itself, or
        without both)."""
        if r.backend == self.reference:
            return None
        ref = next((x for x in self.results if x.backend == self.reference and x.batch == r.batch
                    and x.prompt == r.prompt and x.precision == r.precision and x.tokens is not None), None)
        if ref is None or r.tokens is None:
            return None
        return ref.tokens == r.tokens

    # Views: each renders the dict above (hwkit.generate.views), never this object.

    def table(self) -> Any:
        return bench_table(self.to_dict())

    def to_json(self, path: str | None = None) -> str:
        return write_json(self.to_dict(), path)

    def to_markdown(self, path: str | None = None) -> str:
        text = bench_markdown(self.to_dict())
        if path:
            atomic_write(path, text)
        return text

    def plot(self, path: str) -> None:
        atomic_write(path, bench_png(self.to_dict()))


def _machine(busy: float | None) -> dict[str, Any]:
    """How free the machine was while the row's backend ran (``hwkit.measure.load``)."""
    usable = usable_cores()
    crowded = busy is not None and busy >= load.BUSY_CORES
    return {"others_busy_cores": busy, "usable_cores": usable, "busy": crowded,
            "threads_that_fit": load.fitting_threads(usable, busy) if crowded and busy is not None else None}
