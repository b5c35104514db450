"""The names of hwkit's result schemas, and reading a saved result back.

Every result dict (live ``to_dict()`` or a file) is strict JSON: non-finite numbers are the
strings "nan", "inf" and "-inf" (``hwkit._files.finite``); ``number`` reads them back.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hwkit.errors import ResultError

BENCH_SCHEMA = "hwkit.bench/1"
CHECK_SCHEMA = "hwkit.check/1"
BISECT_SCHEMA = "hwkit.bisect/1"
WRITERS = {BENCH_SCHEMA: "hwkit bench --json", CHECK_SCHEMA: "hwkit check --json",
           BISECT_SCHEMA: "hwkit check --bisect --json"}


def load_result(path: str | os.PathLike[str], schema: str = BENCH_SCHEMA) -> dict[str, Any]:
    """The result saved at ``path``, checked to be of ``schema``.

    Raises:
        ResultError: the file is missing, not JSON, or not a result of that schema.
    """
    hint = f"write one with {WRITERS.get(schema, 'hwkit')}"
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError as e:
        raise ResultError(f"result file not found: {path}; {hint}") from e
    except (OSError, ValueError) as e:
        raise ResultError(f"{path} is not a readable JSON result ({e}); {hint}") from e
    if not isinstance(data, dict) or data.get("schema") != schema:
        found = data.get("schema") if isinstance(data, dict) else None
        what = f"a {found} result" if isinstance(found, str) else "not a hwkit result"
        raise ResultError(f"{path} is {what}, not {schema}; {hint}")
    return data


def number(value: Any) -> float | None:
    """A figure of a result dict as a float: None stays None, "nan"/"inf"/"-inf" become floats."""
    if value is None:
        return None
    return float(value)


def bench_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat dict per backend and batch of a ``hwkit.bench/1`` result: what the table, CSV and
    Markdown show (None where not measured)."""
    rows = []
    for result in data["results"]:
        latency = result.get("latency_s") or {}
        peak_rss = (result.get("memory") or {}).get("peak_rss")
        rows.append({
            "backend": result["backend"],
            "device": result["device"],
            "batch": result["batch"],
            "status": result["status"],
            "error": result.get("error", ""),
            "median_s": latency.get("median"),
            "p90_s": latency.get("p90"),
            "p99_s": latency.get("p99"),
            "ci_low_s": latency.get("ci_low"),
            "ci_high_s": latency.get("ci_high"),
            "ci_half_width": number(result.get("ci_half_width")),
            "runs": latency.get("count", 0),
            "hit_max_time": result.get("hit_max_time", False),
            "items_per_s": result.get("items_per_s"),
            "vs_fastest": result.get("vs_fastest"),
            "within_noise": result.get("within_noise", False),
            "is_reference": result.get("is_reference", result["backend"] == data.get("reference")),
            "max_abs_diff": number(result.get("max_abs_diff")),
            "parity": result.get("parity"),
            "compile_s": result.get("compile_s"),
            "first_run_s": result.get("first_run_s"),
            "peak_rss_mib": peak_rss / 2**20 if peak_rss else None,
            "gflops_per_s": result.get("gflops_per_s"),
            "percent_of_peak": result.get("percent_of_peak"),
        })
    return rows
