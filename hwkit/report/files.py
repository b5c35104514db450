"""A bench result as CSV (one row per backend and batch) and as a Markdown table."""

from __future__ import annotations

import csv
import io
from typing import Any

from hwkit.report.format import format_error, format_time
from hwkit.report.schema import bench_rows
from hwkit.report.tables import delta_text, has_precision_axis, precision_label, speedup_text

CSV_COLUMNS = ["backend", "device", "batch", "precision", "emulated", "baseline", "status", "median_s", "p90_s", "p99_s", "ci_low_s", "ci_high_s",
               "runs", "items_per_s", "vs_fastest", "within_noise", "speedup_vs_fp32",
               "cosine_vs_fp32", "top1_vs_fp32", "max_abs_vs_fp32", "cosine_vs_reference", "top1_vs_reference", "max_abs_diff", "parity", "compile_s", "first_run_s",
               "peak_rss_mib", "gflops_per_s", "percent_of_peak", "error", "machine_busy", "timed_options"]


def bench_csv(data: dict[str, Any]) -> str:
    """The ``hwkit.bench/2`` dict as CSV text with ``CSV_COLUMNS``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(bench_rows(data))
    return buffer.getvalue()


def bench_markdown(data: dict[str, Any]) -> str:
    """The ``hwkit.bench/2`` dict as a Markdown table under a heading (with precision,
    speed-up vs fp32 and Δ vs fp32 columns when a row is not fp32)."""
    precise = has_precision_axis(data)
    header = ["backend", "device", "batch", "median", "p90", "95% CI", "items/s", "vs fastest", "max abs diff", "parity",
              "peak RSS"] + (["precision", "speed-up vs fp32", "Δ vs fp32"] if precise else [])
    lines = [f"### hwkit bench: {_cell(data['model']['name'])} ({data['mode']} mode, "
             f"{data['settings']['threads']} threads each)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in bench_rows(data):
        if row["median_s"] is None:
            cells = [_backend(row), row["device"], str(row["batch"]), f"**{row['status']}**", "", "", "", "",
                     row["error"], "", ""]
        else:
            median = format_time(row["median_s"]) + (" (machine busy)" if row["machine_busy"] else "")
            cells = [_backend(row), row["device"], str(row["batch"]), median, format_time(row["p90_s"]),
                     f"{format_time(row['ci_low_s'])} – {format_time(row['ci_high_s'])}" if row["ci_low_s"] is not None
                     else f"none: {row['runs']} runs are too few", f"{row['items_per_s']:,.1f}",
                     f"{row['vs_fastest']:.2f}x" + (" (within noise)" if row["within_noise"] else ""),
                     "reference" if row["is_reference"] else format_error(row["max_abs_diff"]),
                     "" if row["is_reference"] else row["parity"] or "-",
                     f"{row['peak_rss_mib']:,.0f} MiB" if row["peak_rss_mib"] else "-"]
        if precise:
            cells += [precision_label(row), speedup_text(row), delta_text(row)]
        lines.append("| " + " | ".join(map(_cell, cells)) + " |")
    return "\n".join(lines) + "\n"


def _backend(row: dict[str, Any]) -> str:
    """The backend's name, with the options its timed run chose itself (e.g. ``cpu (compile=fast)``)."""
    return f"{row['backend']} ({row['timed_options']})" if row["timed_options"] else row["backend"]


def _cell(text: str) -> str:
    """An external string (a name, an error) kept inside its Markdown table cell and line."""
    return " ".join(str(text).split()).replace("|", "\\|")
