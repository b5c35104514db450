"""A bench result dict as ONE self-contained HTML page: the table (sortable), the plots (inline SVG),
the machine and the method. It works offline from a file: nothing is linked, and its Content
Security Policy forbids every fetch, so a copy mailed or archived still shows everything.

Every string that comes from the result (model, backend and plugin names, error messages,
versions) is HTML-escaped; the plots' text is escaped by matplotlib's SVG writer.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from hwkit.report import figures
from hwkit.report.format import format_error, format_fraction, format_time, shapes_text
from hwkit.report.html_assets import CSS, JS
from hwkit.report.schema import bench_rows, number

# Inline styles and scripts and data: images only; no connection of any kind.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


Column = tuple[str, str, Callable[[dict[str, Any]], tuple[str, Any]]]  # header, "text"/"num", row -> (shown, sort key)


def _time(key: str) -> Callable[[dict[str, Any]], tuple[str, Any]]:
    return lambda row: (format_time(row[key]) if row[key] is not None else "-", row[key])


def _ci(row: dict[str, Any]) -> tuple[str, Any]:
    half = row["ci_half_width"]
    if row["median_s"] is None:
        return "", None
    if half is None or math.isnan(half):
        return "- (too few runs)", None
    return f"±{half * 100:.1f}%" + ("*" if row["hit_max_time"] else ""), half


def _vs(row: dict[str, Any]) -> tuple[str, Any]:
    ratio = row["vs_fastest"]
    if ratio is None:
        return "-", None
    return f"{ratio:.2f}x" + (" ≈" if row["within_noise"] else ""), ratio


def _precision(row: dict[str, Any]) -> tuple[str, Any]:
    name = row.get("precision") or "fp32"
    if row.get("emulated"):
        return f"{name} (emulated)", name
    return (f"{name} (baseline)" if row.get("baseline") else name), name


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{number(value):.2f}x"


def _diff(row: dict[str, Any]) -> tuple[str, Any]:
    if row["is_reference"]:
        return "reference", -1.0
    return format_error(row["max_abs_diff"]), row["max_abs_diff"]


def _columns(data: dict[str, Any], rows: Sequence[dict[str, Any]]) -> list[Column]:
    columns: list[Column] = [("backend", "text", lambda r: (r["backend"], r["backend"])),
                             ("device", "text", lambda r: (r["device"] or "-", r["device"]))]
    precise = any((r.get("precision") or "fp32") != "fp32" for r in rows)  # rows without one are fp32
    if precise:
        columns.append(("precision", "text", _precision))
    if len({r["batch"] for r in rows}) > 1:
        columns.append(("batch", "num", lambda r: (str(r["batch"]), r["batch"])))
    columns += [
        ("status", "text", lambda r: (r["status"], r["status"])),
        ("median", "num", _time("median_s")),
        ("95% CI of the median", "num", lambda r: (
            f"{format_time(r['ci_low_s'])} – {format_time(r['ci_high_s'])}" if r["ci_low_s"] is not None
            and r["ci_high_s"] is not None else "-", r["ci_low_s"])),
        ("±CI", "num", _ci),
        ("p90", "num", _time("p90_s")),
        ("p99", "num", _time("p99_s")),
        ("runs", "num", lambda r: (str(r["runs"]), r["runs"])),
        ("items/s", "num", lambda r: (f"{r['items_per_s']:,.1f}" if r["items_per_s"] else "-", r["items_per_s"])),
        ("vs fastest", "num", _vs),
        *([("speed-up vs fp32", "num", lambda r: (_ratio(r.get("speedup_vs_fp32")), r.get("speedup_vs_fp32"))),
           ("cosine vs fp32", "num", lambda r: (format_fraction(r.get("cosine_vs_fp32"), ".5f"), r.get("cosine_vs_fp32")))]
          if precise else []),
        ("max abs diff", "num", _diff),
        ("parity", "text", lambda r: ("" if r["is_reference"] else (r["parity"] or "-"), r["parity"] or "")),
        ("compile", "num", _time("compile_s")),
        ("peak RSS", "num", lambda r: (f"{r['peak_rss_mib']:,.0f} MiB" if r["peak_rss_mib"] else "-", r["peak_rss_mib"])),
    ]
    if data["model"].get("flops"):
        columns.append(("GFLOP/s", "num", lambda r: (f"{r['gflops_per_s']:.1f}" if r["gflops_per_s"] else "-",
                                                      r["gflops_per_s"])))
    return columns


def _sort_key(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(float(value)) if math.isfinite(float(value)) else ""
    figure = number(value) if value in ("nan", "inf", "-inf") else None
    return "" if figure is not None else str(value)


def _table(data: dict[str, Any]) -> str:
    rows = bench_rows(data)
    columns = _columns(data, rows)
    head = "".join(f'<th scope="col" class="{kind}"><button type="button">{_e(name)}</button></th>'
                   for name, kind, _ in columns)
    body = []
    for row in rows:
        cells = []
        for name, kind, cell in columns:
            shown, key = cell(row)
            mark = (" bad" if (name == "status" and shown != "ok") or (name == "parity" and shown == "FAIL")
                    else " good" if name == "parity" and shown == "pass" else "")
            cells.append(f'<td class="{kind}{mark}" data-sort="{_e(_sort_key(key))}">{_e(shown)}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<div class="table-wrap"><table class="sortable" id="results"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _errors(data: dict[str, Any]) -> str:
    failed = [r for r in data["results"] if r.get("error")]
    if not failed:
        return ""
    items = "".join(f"<li><strong>{_e(r['backend'])} on {_e(r['device'])}, {_e(r.get('precision', 'fp32'))}, "
                    f"batch {_e(r['batch'])}: {_e(r['status'])}</strong> <span>{_e(r['error'])}</span></li>"
                    for r in failed)
    # An unsupported precision is a declared fact, not an error: name the section by what it holds.
    title = "Unsupported precisions" if all(r["status"] == "unsupported" for r in failed) else "Errors"
    return f'<h2>{title}</h2><ul class="errors">{items}</ul>'


def _figures(data: dict[str, Any]) -> str:
    if not figures.measured(data):
        return "<h2>Plots</h2><p>No row was measured: nothing to plot.</p>"
    shown = [("latency", figures.latency_svg(data),
              "Median latency at the smallest batch; whiskers: the 95% confidence interval of the median.")]
    if figures.has_batch_sweep(data):
        shown.append(("throughput", figures.throughput_svg(data), "Items per second against batch size."))
    if figures.has_precision(data):
        shown.append(("accuracy", figures.accuracy_svg(data),
                      "Each precision's median latency against its largest difference from the reference's outputs."))
    parts = "".join(f'<figure class="plot" id="plot-{name}">{svg}<figcaption>{_e(caption)}</figcaption></figure>'
                    for name, svg, caption in shown)
    return f'<h2>Plots</h2><div class="figures">{parts}</div>'


def _facts(pairs: Sequence[tuple[str, Any]], element_id: str) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs if v not in (None, "", [], {}))
    return f'<dl class="facts" id="{element_id}">{items}</dl>'


def _machine(data: dict[str, Any]) -> str:
    system: dict[str, Any] = data["system"] if isinstance(data.get("system"), dict) else {}
    packages = system.get("packages") or {}
    pairs = [("CPU", system.get("cpu")), ("architecture", system.get("machine")),
             ("cores", f"{system.get('physical_cores')} physical, {system.get('logical_cores')} logical, "
                       f"{system.get('usable_cores')} usable by hwkit" if system.get("logical_cores") else None),
             ("memory", f"{system['memory_gib']} GiB" if system.get("memory_gib") else None),
             ("OS", system.get("os")), ("Python", system.get("python")),
             ("packages", ", ".join(f"{k} {v}" for k, v in packages.items()))]
    known = {"cpu", "machine", "physical_cores", "logical_cores", "usable_cores", "memory_gib", "os", "python", "packages"}
    pairs += [(k, json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in system.items() if k not in known]
    versions = {f"{r['backend']}": r.get("versions") for r in data["results"] if r.get("versions")}
    pairs += [(f"{name} versions", ", ".join(f"{k} {v}" for k, v in found.items())) for name, found in versions.items()
              if isinstance(found, dict)]
    busy = [r for r in data["results"] if (r.get("machine") or {}).get("busy")]
    warning = ('<p class="busy">The machine was busy while some rows were measured (other processes kept cores '
               "busy): those rows are likely slower than on a free machine.</p>") if busy else ""
    return f"<h2>Machine</h2>{warning}{_facts(pairs, 'machine')}"


def _method(data: dict[str, Any]) -> str:
    s = data.get("settings") or {}
    target = f", until the median's 95% CI is within ±{s['target_ci']:.0%}" if s.get("target_ci") else ""
    words = [
        ("mode", "one request at a time" if data.get("mode") == "latency"
         else "one request at a time per batch size; items/s = batch / median"),
        ("warm-up", f"at least {s.get('warmup_iters')} runs and {s.get('warmup_time')} s, not timed"),
        ("timing", f"each timed run is one execute plus synchronize; at least {s.get('min_iters')} runs and "
                   f"{s.get('min_time')} s{target}, stopped at {s.get('max_time')} s; the median with the 95% "
                   "confidence interval of the median (order statistics)"),
        ("inputs", f"{s.get('input_sets')} seeded input sets (seed {s.get('seed')}), the same arrays for every backend"),
        ("threads", s.get("threads")),
        ("isolation", "each backend in its own process" if s.get("isolation") else "all backends in one process"),
        ("reference", f"{data.get('reference') or '-'} {data.get('reference_note') or ''}".strip()),
        ("shapes", "; ".join(f"batch {b}: {shapes_text(v)}" for b, v in data["model"]["shapes"].items())),
        ("elapsed", f"{number(data.get('elapsed_s')) or 0:.1f} s"
                    + (f", interrupted by {data.get('interrupted_by')}" if data.get("interrupted") else "")),
    ]
    settings = [(k, json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in s.items()]
    return (f"<h2>Method</h2>{_facts(words, 'method')}<details><summary>every setting</summary>"
            f"{_facts(settings, 'settings')}</details>")


def bench_html(data: dict[str, Any], source: str = "") -> str:
    """The page for a ``hwkit.bench`` result dict; ``source`` says where it came from (a file, a
    saved run). Needs matplotlib (``hwkit[plot]``) for the plots."""
    model = data["model"]
    version = ((data.get("system") or {}).get("packages") or {}).get("hwkit", "")
    meta = [f"model sha256 <code>{_e(model['sha256'])}</code>", f"opset {_e(model.get('opset'))}",
            f"{_e(data.get('settings', {}).get('threads'))} threads", f"{_e(data.get('mode'))} mode"]
    if source:
        meta.append(_e(source))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{POLICY}">
<meta name="generator" content="hwkit {_e(version)}">
<title>hwkit bench: {_e(model['name'])}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<h1>hwkit bench: {_e(model['name'])}</h1>
<p class="meta">{" · ".join(meta)}</p>
<h2>Results</h2>
<p class="meta">Click a column's header to sort by it. ≈: within noise of the fastest (the CIs overlap);
*: stopped at the time limit before the CI reached its target.</p>
{_table(data)}
{_errors(data)}
{_figures(data)}
{_machine(data)}
{_method(data)}
<footer>Written by hwkit {_e(version)} from a {_e(data.get('schema'))} result. This page is self-contained: it needs
no network.</footer>
</main>
<script>{JS}</script>
</body>
</html>
"""
