"""A bench result as CSV (one row per backend and batch) and as a Markdown table."""

from __future__ import annotations

import csv
import io
from typing import Any

from hwkit.report.format import format_error, format_time
from hwkit.report.schema import bench_rows

CSV_COLUMNS = ["backend", "device", "batch", "status", "median_s", "p90_s", "p99_s", "ci_low_s", "ci_high_s",
               "runs", "items_per_s", "vs_fastest", "within_noise", "max_abs_diff", "parity", "compile_s", "first_run_s",
               "peak_rss_mib", "gflops_per_s", "percent_of_peak", "error", "machine_busy"]


def bench_csv(data: dict[str, Any]) -> str:
    """The ``hwkit.bench/1`` dict as CSV text with ``CSV_COLUMNS``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(bench_rows(data))
    return buffer.getvalue()


def bench_markdown(data: dict[str, Any]) -> str:
    """The ``hwkit.bench/1`` dict as a Markdown table under a heading."""
    header = ["backend", "device", "batch", "median", "p90", "95% CI", "items/s", "vs fastest", "max abs diff", "parity",
              "peak RSS"]
    lines = [f"### hwkit bench: {_cell(data['model']['name'])} ({data['mode']} mode, "
             f"{data['settings']['threads']} threads each)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in bench_rows(data):
        if row["median_s"] is None:
            cells = [row["backend"], row["device"], str(row["batch"]), f"**{row['status']}**", "", "", "", "",
                     row["error"], "", ""]
        else:
            median = format_time(row["median_s"]) + (" (machine busy)" if row["machine_busy"] else "")
            cells = [row["backend"], row["device"], str(row["batch"]), median, format_time(row["p90_s"]),
                     f"{format_time(row['ci_low_s'])} – {format_time(row['ci_high_s'])}" if row["ci_low_s"] is not None
                     else f"none: {row['runs']} runs are too few", f"{row['items_per_s']:,.1f}",
                     f"{row['vs_fastest']:.2f}x" + (" (within noise)" if row["within_noise"] else ""),
                     "reference" if row["is_reference"] else format_error(row["max_abs_diff"]),
                     "" if row["is_reference"] else row["parity"] or "-",
                     f"{row['peak_rss_mib']:,.0f} MiB" if row["peak_rss_mib"] else "-"]
        lines.append("| " + " | ".join(map(_cell, cells)) + " |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """An external string (a name, an error) kept inside its Markdown table cell and line."""
    return " ".join(str(text).split()).replace("|", "\\|")
