"""Turning results into what people read: rich tables, JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import TYPE_CHECKING, Any

from rich.table import Table

from hwkit.cache import atomic_write
from hwkit.system import fingerprint

if TYPE_CHECKING:
    from hwkit.bench import BenchResult

BENCH_SCHEMA = "hwkit.bench/1"


def format_time(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{seconds:.3g} s"


def format_error(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value) or math.isnan(value):
        return str(value)
    return "0" if value == 0 else f"{value:.2e}"


def bench_table(result: BenchResult) -> Table:
    """One row per backend: latency, throughput, relative speed, agreement with the reference."""
    model = result.model
    shapes = ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in result.shapes.items())
    table = Table(
        title=f"hwkit bench: {model.name} ({shapes}), {result.settings.resolved_threads()} threads each",
        caption=_caption(result),
    )
    for column, justify in [("backend", "left"), ("device", "left"), ("median", "right"),
                            ("p90", "right"), ("±CI", "right"), ("runs", "right"),
                            ("items/s", "right"), ("vs fastest", "right"), ("max abs diff", "right")]:
        table.add_column(column, justify=justify, no_wrap=column in ("backend", "median", "p90"))  # type: ignore[arg-type]
    fastest = result.fastest()
    best = fastest.summary if fastest else None
    for record in result.results:
        stats = record.summary if record.ok else None
        if stats is None:
            table.add_row(record.backend, record.device or "-", f"[red]{record.status}[/red]",
                          "", "", "", "", "", f"[red]{_short(record.error)}[/red]")
            continue
        noise = best is not None and record is not fastest and stats.overlaps(best)
        relative = stats.median / best.median if best else float("nan")
        table.add_row(
            record.backend,
            record.device,
            format_time(stats.median),
            format_time(stats.p90),
            f"±{stats.ci_half_width * 100:.1f}%",
            str(stats.count),
            f"{result.batch / stats.median:,.1f}",
            "1.00x" if record is fastest else f"{relative:.2f}x" + (" ≈" if noise else ""),
            "reference" if record.backend == result.reference else format_error(record.max_abs_diff),
        )
    return table


def _caption(result: BenchResult) -> str:
    s = result.settings
    text = (f"latency mode, one request at a time; warm-up ≥{s.warmup_iters} runs/{s.warmup_time:g} s, "
            f"then ≥{s.min_iters} runs and ≥{s.min_time:g} s; {s.input_sets} seeded input sets (seed {s.seed}). "
            "±CI: 95% confidence interval of the median; vs fastest: median ratio, ≈ when the "
            f"intervals overlap (within noise); max abs diff: against {result.reference or '-'} on the same inputs")
    if result.interrupted:
        text += "; INTERRUPTED: partial results"
    return text


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bench_to_dict(result: BenchResult) -> dict[str, Any]:
    """The documented JSON form (schema ``hwkit.bench/1``; see docs/results.md)."""
    settings = dataclasses.asdict(result.settings)
    settings["threads"] = result.settings.resolved_threads()
    settings["shapes"] = {k: list(v) for k, v in (result.settings.shapes or {}).items()}
    return {
        "schema": BENCH_SCHEMA,
        "model": {
            "name": result.model.name,
            "sha256": result.model.sha256,
            "opset": result.model.opset,
            "inputs": [str(s) for s in result.model.inputs],
            "outputs": [str(s) for s in result.model.outputs],
            "shapes": {k: list(v) for k, v in result.shapes.items()},
            "batch": result.batch,
        },
        "settings": settings,
        "reference": result.reference,
        "interrupted": result.interrupted,
        "system": fingerprint(),
        "results": [_record_dict(r, result.batch) for r in result.results],
    }


def _record_dict(record: Any, batch: int) -> dict[str, Any]:
    stats = record.summary
    return {
        "backend": record.backend,
        "device": record.device,
        "status": record.status,
        "error": record.error,
        "compile_s": record.compile_s,
        "first_run_s": record.first_run_s,
        "options": record.options,
        "versions": record.versions,
        "latency_s": dataclasses.asdict(stats) if stats else None,
        "items_per_s": batch / stats.median if stats else None,
        "hit_max_time": record.hit_max_time,
        "samples_s": record.samples,
        "agreement": [a.to_dict() for a in record.agreement] if record.agreement else None,
    }


def bench_to_json(result: BenchResult, path: str | None = None) -> str:
    text = json.dumps(bench_to_dict(result), indent=2, default=_json_default, allow_nan=True)
    if path:
        atomic_write(path, text + "\n")
    return text


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
