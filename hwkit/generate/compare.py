"""``check_generate()``: do the backends generate the same text? Every backend's greedy tokens
against the reference's, the first step where they differ, and the last position's logits judged
by the tolerance profile at every step up to that one (after it the backends are fed different
tokens, so their logits no longer answer the same question). Schema ``hwkit.generate-check/1``."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwkit._files import finite, write_json
from hwkit.api import ModelSource
from hwkit.generate.bench import OUTPUTS, prepare, run_jobs
from hwkit.generate.records import GenerateRecord, row_order
from hwkit.generate.settings import GenerateSettings
from hwkit.generate.views import check_table
from hwkit.model import Model
from hwkit.parity.agreement import compare_output
from hwkit.parity.tolerance import Tolerance, tolerance
from hwkit.system import fingerprint

CHECK_SCHEMA = "hwkit.generate-check/1"


@dataclasses.dataclass
class GenerateCheck:
    """Every backend's generation beside the reference's, compared step by step."""

    model: Model
    settings: GenerateSettings
    tolerance: Tolerance
    reference: str
    results: list[GenerateRecord]
    elapsed_s: float = 0.0

    def compared(self) -> list[dict[str, Any]]:
        rows = []
        for r in sorted(self.results, key=row_order):
            ref = self._reference_of(r)
            row: dict[str, Any] = {"backend": r.backend, "device": r.device, "precision": r.precision,
                                   "prompt": r.prompt, "batch": r.batch, "status": r.status, "error": r.error,
                                   "cache": r.cache, "is_reference": r is ref, "tokens": r.tokens}
            if r.status == "ok" and ref is not None and ref.status == "ok" and r is not ref:
                row.update(compare_generations(ref, r, self.tolerance))
            elif r.status == "ok" and r is not ref:
                row.update(passed=False, error=f"the reference {self.reference} has no tokens to compare with")
            rows.append(row)
        return rows

    def _reference_of(self, r: GenerateRecord) -> GenerateRecord | None:
        return next((x for x in self.results if x.backend == self.reference and x.prompt == r.prompt
                     and x.batch == r.batch and x.precision == r.precision), None)

    @property
    def passed(self) -> bool:
        return all(row.get("passed", True) for row in self.compared() if row["status"] == "ok")

    def failures(self) -> list[str]:
        lines = []
        for row in self.compared():
            if row["status"] != "ok" or row.get("passed", True):
                continue
            where = f"{row['backend']} (prompt {row['prompt']}, batch {row['batch']})"
            first = row.get("first_difference")
            if first is not None:
                lines.append(f"{where}: greedy tokens differ from {self.reference}'s first at step {first['step']} "
                             f"(row {first['row']}: {first['token']} against {first['reference_token']}); logits "
                             f"max abs diff there {first['max_abs']:.3g}")
            if row.get("logits_within") is False:
                lines.append(f"{where}: logits outside the {self.tolerance.profile} tolerance first at step "
                             f"{row['first_outside_step']} (max abs diff {row['max_abs']:.3g})")
            if "logits_within" not in row:
                lines.append(f"{where}: {row['error']}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        settings = dataclasses.asdict(self.settings)
        settings.update(prompts=list(self.settings.prompts), batches=list(self.settings.batches),
                        threads=self.settings.resolved_threads())
        return finite({"schema": CHECK_SCHEMA,
                       "model": {"name": self.model.name, "sha256": self.model.sha256},
                       "settings": settings, "reference": self.reference, "tolerance": self.tolerance.to_dict(),
                       "passed": self.passed, "elapsed_s": self.elapsed_s, "system": fingerprint(),
                       "results": self.compared()})

    def table(self) -> Any:
        return check_table(self.to_dict())

    def to_json(self, path: str | None = None) -> str:
        return write_json(self.to_dict(), path)


def compare_generations(ref: GenerateRecord, got: GenerateRecord, tol: Tolerance) -> dict[str, Any]:
    """Tokens and per-step logits of ``got`` against ``ref`` (same prompt, batch and length)."""
    a, b = np.asarray(ref.tokens), np.asarray(got.tokens)
    differ = np.argwhere(a != b)  # (row, step) pairs
    first: dict[str, Any] | None = None
    last = a.shape[1] - 1
    if differ.size:
        step = int(differ[:, 1].min())
        row = int(differ[differ[:, 1] == step][0, 0])
        first = {"step": step, "row": row, "token": int(b[row, step]), "reference_token": int(a[row, step])}
        last = step
    worst_abs, worst_ratio = 0.0, 0.0
    outside: int | None = None
    if ref.logits is None or got.logits is None:
        return {"first_difference": first, "steps_compared": 0, "max_abs": None, "tol_ratio": None,
                "logits_within": None, "first_outside_step": None, "passed": False}
    for step in range(last + 1):
        agreement = compare_output(f"logits[{step}]", ref.logits[step], got.logits[step], tol)
        worst_abs = max(worst_abs, agreement.max_abs)
        worst_ratio = max(worst_ratio, agreement.tol_ratio or 0.0)
        if not agreement.passed and outside is None:
            outside = step
        if first is not None and step == first["step"]:
            first["max_abs"] = agreement.max_abs
    return {"first_difference": first, "steps_compared": last + 1, "max_abs": worst_abs, "tol_ratio": worst_ratio,
            "logits_within": outside is None, "first_outside_step": outside,
            "passed": first is None and outside is None}


def check_generate(model: ModelSource, backends: Sequence[str] | None = None, reference: str | None = None,
                   settings: GenerateSettings | None = None, atol: float | None = None,
                   rtol: float | None = None) -> GenerateCheck:
    """One greedy generation per backend (and the reference, chosen or not), compared."""
    started = time.perf_counter()
    settings = settings or GenerateSettings()
    tol = tolerance(settings.precision, atol, rtol)
    run, prompts = prepare(model, backends, reference, settings)
    targets = list(dict.fromkeys([run.reference, *run.targets]))
    report = GenerateCheck(run.model, settings, tol, run.reference.partition(":")[0], [])
    run_jobs(OUTPUTS, run.model, targets, settings, prompts, None, report.results)
    report.elapsed_s = time.perf_counter() - started
    return report
