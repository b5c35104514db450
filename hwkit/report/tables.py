"""Turning results into what people read: a rich table, JSON, CSV and Markdown.

``bench_rows`` computes every figure once; the table, CSV and Markdown only format them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from typing import TYPE_CHECKING, Any

from rich.table import Table

from hwkit._files import atomic_write, write_json
from hwkit.measure.stats import summarize
from hwkit.system import fingerprint

if TYPE_CHECKING:
    from hwkit.measure.bench import BackendResult, BenchResult

BENCH_SCHEMA = "hwkit.bench/1"
MIB = 2**20


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


def bench_rows(result: BenchResult) -> list[dict[str, Any]]:
    """One dict per backend and batch size with every reported figure (None when not measured)."""
    rows = []
    for record in result.results:
        stats = record.summary if record.ok else None
        fastest = result.fastest(record.batch)
        best = fastest.summary if fastest else None
        flops = result.flops.get(record.batch) if result.flops else None
        peak = result.peaks.get(record.device_kind) if result.peaks else None
        row: dict[str, Any] = {
            "backend": record.backend,
            "device": record.device,
            "batch": record.batch,
            "status": record.status,
            "error": record.error,
            "median_s": stats.median if stats else None,
            "p90_s": stats.p90 if stats else None,
            "p99_s": stats.p99 if stats else None,
            "ci_low_s": stats.ci_low if stats else None,
            "ci_high_s": stats.ci_high if stats else None,
            "ci_half_width": stats.ci_half_width if stats else None,
            "runs": stats.count if stats else 0,
            "hit_max_time": record.hit_max_time,
            "items_per_s": record.batch / stats.median if stats else None,
            "vs_fastest": stats.median / best.median if stats and best else None,
            "within_noise": bool(stats and best and record is not fastest and stats.overlaps(best)),
            "is_reference": record.backend == result.reference,
            "max_abs_diff": record.max_abs_diff,
            "parity": None if record.parity_passed is None else ("pass" if record.parity_passed else "FAIL"),
            "compile_s": record.compile_s,
            "first_run_s": record.first_run_s,
            "peak_rss_mib": record.peak_rss / MIB if record.peak_rss else None,
            "gflops_per_s": flops / stats.median / 1e9 if stats and flops else None,
            "percent_of_peak": None,
        }
        if row["gflops_per_s"] and peak:
            row["percent_of_peak"] = 100 * row["gflops_per_s"] / peak
        rows.append(row)
    return rows


def bench_table(result: BenchResult) -> Table:
    """One row per backend (and batch size): latency, spread, throughput, speed, agreement, memory."""
    shapes = "; ".join(", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in s.items()) for s in result.shapes.values())
    table = Table(
        title=f"hwkit bench: {result.model.name} ({shapes}), {result.settings.resolved_threads()} threads each, "
              f"{result.mode} mode",
        caption=_caption(result),
    )
    sweep = len(result.batches) > 1 or bool(result.settings.batches)
    columns = ["backend", "device"] + (["batch"] if sweep else []) + [
        "median", "p90", "±CI", "runs", "items/s", "vs fastest", "max abs diff", "parity", "peak RSS"]
    if result.flops:
        columns += ["GFLOP/s", "% peak"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("backend", "device") else "right",
                         no_wrap=column in ("backend", "median", "p90"))
    for row in bench_rows(result):
        head = [row["backend"], row["device"] or "-"] + ([str(row["batch"])] if sweep else [])
        if row["median_s"] is None:
            filler = [""] * (len(columns) - len(head) - 2)
            table.add_row(*head, f"[red]{row['status']}[/red]", *filler, f"[red]{_short(row['error'])}[/red]")
            continue
        vs = "1.00x" if row["vs_fastest"] == 1.0 else f"{row['vs_fastest']:.2f}x" + (" ≈" if row["within_noise"] else "")
        cells = head + [
            format_time(row["median_s"]),
            format_time(row["p90_s"]),
            f"±{row['ci_half_width'] * 100:.1f}%" + ("*" if row["hit_max_time"] else ""),
            str(row["runs"]),
            f"{row['items_per_s']:,.1f}",
            vs,
            "reference" if row["is_reference"] else format_error(row["max_abs_diff"]),
            "" if row["is_reference"] else {"pass": "[green]pass[/]", "FAIL": "[red]FAIL[/]"}.get(row["parity"] or "", "-"),
            f"{row['peak_rss_mib']:,.0f} MiB" if row["peak_rss_mib"] else "-",
        ]
        if result.flops:
            cells += [f"{row['gflops_per_s']:.1f}" if row["gflops_per_s"] else "-",
                      f"{row['percent_of_peak']:.0f}%" if row["percent_of_peak"] else "-"]
        table.add_row(*cells)
    return table


def _caption(result: BenchResult) -> str:
    s = result.settings
    mode = ("one request at a time" if result.mode == "latency"
            else "one request at a time per batch size; items/s = batch / median")
    text = (f"{mode}; warm-up ≥{s.warmup_iters} runs and ≥{s.warmup_time:g} s, then ≥{s.min_iters} runs and "
            f"≥{s.min_time:g} s" + (f" and a ±{s.target_ci:.0%} CI" if s.target_ci else "") + f"; {s.input_sets} seeded input sets (seed {s.seed}); "
            f"{'each backend in its own process' if s.isolation else 'all backends in one process'}. "
            "±CI: 95% confidence interval of the median; vs fastest: median ratio at the same batch, ≈ when "
            f"the intervals overlap (within noise); max abs diff: against {result.reference or '-'} on the same "
            f"inputs; parity: every output within the {s.precision} tolerance profile (hwkit check for details); "
            "peak RSS: the backend's process")
    if any(r.hit_max_time for r in result.results):
        text += f"; *: stopped at --max-time ({s.max_time:g} s) before the CI reached its target"
    if result.flops:
        text += "; GFLOP/s: the graph's counted FLOPs / median; % peak: of the measured matmul peak (hwkit peak)"
    if result.interrupted:
        text += ". INTERRUPTED: partial results"
    return text


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_summary(result: BenchResult) -> str:
    """The closing line: how long the answer took and how sure it is."""
    widths = [r.summary.ci_half_width for r in result.results if r.ok and r.summary]
    worst = f"±{max(widths) * 100:.1f}%" if widths else "n/a"
    return f"finished in {result.elapsed_s:.1f} s; widest 95% CI of a median: {worst}"


def bench_to_dict(result: BenchResult) -> dict[str, Any]:
    """The documented JSON form (schema ``hwkit.bench/1``; see docs/results.md)."""
    settings = dataclasses.asdict(result.settings)
    settings["threads"] = result.settings.resolved_threads()
    settings["shapes"] = {k: list(v) for k, v in (result.settings.shapes or {}).items()}
    settings["batches"] = list(result.settings.batches or [])
    return {
        "schema": BENCH_SCHEMA,
        "model": {
            "name": result.model.name,
            "sha256": result.model.sha256,
            "opset": result.model.opset,
            "inputs": [str(s) for s in result.model.inputs],
            "outputs": [str(s) for s in result.model.outputs],
            "shapes": {str(b): {k: list(v) for k, v in s.items()} for b, s in result.shapes.items()},
            "flops": {str(b): f for b, f in (result.flops or {}).items()},
        },
        "mode": result.mode,
        "settings": settings,
        "reference": result.reference,
        "interrupted": result.interrupted,
        "elapsed_s": result.elapsed_s,
        "system": fingerprint(),
        "peaks_gflops": result.peaks,
        "results": [_record_dict(r, row) for r, row in zip(result.results, bench_rows(result))],
    }


def _record_dict(record: BackendResult, row: dict[str, Any]) -> dict[str, Any]:
    stats = record.summary
    return {
        "backend": record.backend,
        "device": record.device,
        "batch": record.batch,
        "status": record.status,
        "error": record.error,
        "compile_s": record.compile_s,
        "first_run_s": record.first_run_s,
        "options": record.options,
        "versions": record.versions,
        "latency_s": dataclasses.asdict(stats) if stats else None,
        "items_per_s": row["items_per_s"],
        "vs_fastest": row["vs_fastest"],
        "within_noise": row["within_noise"],
        "gflops_per_s": row["gflops_per_s"],
        "percent_of_peak": row["percent_of_peak"],
        "hit_max_time": record.hit_max_time,
        "device_time_s": summary_dict(record.device_samples),
        "memory": {"rss_before_compile": record.rss_before_compile, "peak_rss": record.peak_rss,
                   "device": record.device_memory},
        "samples_s": record.samples,
        "agreement": [a.to_dict() for a in record.agreement] if record.agreement else None,
    }


def summary_dict(samples: list[float]) -> dict[str, Any] | None:
    return dataclasses.asdict(summarize(samples)) if samples else None


def bench_to_json(result: BenchResult, path: str | None = None) -> str:
    return write_json(bench_to_dict(result), path, strict=False)


CSV_COLUMNS = ["backend", "device", "batch", "status", "median_s", "p90_s", "p99_s", "ci_low_s", "ci_high_s",
               "runs", "items_per_s", "vs_fastest", "within_noise", "max_abs_diff", "parity", "compile_s", "first_run_s",
               "peak_rss_mib", "gflops_per_s", "percent_of_peak", "error"]


def bench_to_csv(result: BenchResult, path: str | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(bench_rows(result))
    if path:
        atomic_write(path, buffer.getvalue())
    return buffer.getvalue()


def bench_to_markdown(result: BenchResult, path: str | None = None) -> str:
    header = ["backend", "device", "batch", "median", "p90", "95% CI", "items/s", "vs fastest", "max abs diff", "parity",
              "peak RSS"]
    lines = [f"### hwkit bench: {result.model.name} ({result.mode} mode, "
             f"{result.settings.resolved_threads()} threads each)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in bench_rows(result):
        if row["median_s"] is None:
            cells = [row["backend"], row["device"], str(row["batch"]), f"**{row['status']}**", "", "", "", "",
                     row["error"].replace("|", "/"), "", ""]
        else:
            cells = [row["backend"], row["device"], str(row["batch"]), format_time(row["median_s"]), format_time(row["p90_s"]),
                     f"{format_time(row['ci_low_s'])} – {format_time(row['ci_high_s'])}", f"{row['items_per_s']:,.1f}",
                     f"{row['vs_fastest']:.2f}x" + (" (within noise)" if row["within_noise"] else ""),
                     "reference" if row["is_reference"] else format_error(row["max_abs_diff"]),
                     "" if row["is_reference"] else row["parity"] or "-",
                     f"{row['peak_rss_mib']:,.0f} MiB" if row["peak_rss_mib"] else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if path:
        atomic_write(path, text)
    return text

