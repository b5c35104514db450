"""The rich tables of every command, each rendered from a result dict (or, for ``compare``, from
the changes ``hwkit.report.diff`` found between two of them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from hwkit.report.diff import Change
from hwkit.report.format import format_error, format_fraction, format_time, shapes_text, shorten
from hwkit.report.schema import bench_rows, number


def bench_table(data: dict[str, Any]) -> Table:
    """One row per backend (and batch size): latency, spread, throughput, speed, agreement, memory."""
    settings = data["settings"]
    shapes = "; ".join(shapes_text(s) for s in data["model"]["shapes"].values())
    table = Table(
        title=escape(f"hwkit bench: {data['model']['name']} ({shapes}), {settings['threads']} threads each, "
                     f"{data['mode']} mode"),  # every external string is printed literally, never as markup
        caption=_bench_caption(data),
    )
    flops = bool(data["model"].get("flops"))
    sweep = len(data["model"]["shapes"]) > 1 or bool(settings.get("batches"))
    precise = has_precision_axis(data)
    columns = ["backend", "device"] + (["precision"] if precise else []) + (["batch"] if sweep else []) + [
        "median", "p90", "±CI", "runs", "items/s", "vs fastest"] + (["speed-up vs fp32", "Δ vs fp32"] if precise else []) + [
        "max abs diff", "parity", "peak RSS"]
    if flops:
        columns += ["GFLOP/s", "% peak"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("backend", "device", "precision") else "right",
                         no_wrap=column in ("backend", "median", "p90"))
    for row in bench_rows(data):
        name = escape(row["backend"]) + (f" [dim]{escape(row['timed_options'])}[/dim]" if row["timed_options"] else "")
        head = ([name, escape(row["device"] or "-")] + ([precision_label(row)] if precise else [])
                + ([str(row["batch"])] if sweep else []))
        if row["median_s"] is None:
            filler = [""] * (len(columns) - len(head) - 2)
            if row["status"] == "unsupported":  # the reason in full is in the caption
                table.add_row(*head, "[yellow]unsupported[/yellow]", *filler, "[yellow]see below[/yellow]")
                continue
            table.add_row(*head, f"[red]{escape(row['status'])}[/red]", *filler,
                          f"[red]{escape(shorten(row['error']))}[/red]")
            continue
        vs = "1.00x" if row["vs_fastest"] == 1.0 else f"{row['vs_fastest']:.2f}x" + (" ≈" if row["within_noise"] else "")
        cells = head + [
            format_time(row["median_s"]) + (" [yellow]![/]" if row["machine_busy"] else ""),
            format_time(row["p90_s"]),
            ("-" if row["ci_half_width"] is None else f"±{row['ci_half_width'] * 100:.1f}%")
            + ("*" if row["hit_max_time"] else ""),
            str(row["runs"]),
            f"{row['items_per_s']:,.1f}",
            vs,
            *([speedup_text(row), delta_text(row)] if precise else []),
            "reference" if row["is_reference"] else format_error(row["max_abs_diff"]),
            "" if row["is_reference"] else {"pass": "[green]pass[/]", "FAIL": "[red]FAIL[/]"}.get(row["parity"] or "", "-"),
            f"{row['peak_rss_mib']:,.0f} MiB" if row["peak_rss_mib"] else "-",
        ]
        if flops:
            cells += [f"{row['gflops_per_s']:.1f}" if row["gflops_per_s"] else "-",
                      f"{row['percent_of_peak']:.0f}%" if row["percent_of_peak"] else "-"]
        table.add_row(*cells)
    return table


def has_precision_axis(data: dict[str, Any]) -> bool:
    """Whether a bench dict has a row in another precision than fp32 (then the views show the
    precision columns)."""
    return any((r.get("precision") or "fp32") != "fp32" for r in data["results"])


def precision_label(row: dict[str, Any]) -> str:
    """"int8 (emulated)", "fp32 (baseline)" or the precision alone."""
    if row["emulated"]:
        return f"{row['precision']} (emulated)"
    return f"{row['precision']} (baseline)" if row["baseline"] else row["precision"]


def speedup_text(row: dict[str, Any]) -> str:
    value = row["speedup_vs_fp32"]
    return "-" if value is None else f"{value:.2f}x"


def delta_text(row: dict[str, Any]) -> str:
    """The compact "Δ vs fp32" figure: top-1 agreement with the same backend's fp32 row for
    classifier-shaped outputs, with the cosine; the cosine alone otherwise; "-" without one."""
    cosine, top1 = row["cosine_vs_fp32"], row["top1_vs_fp32"]
    if cosine is None:
        return "-"
    text = f"cos {format_fraction(cosine, '.5f')}"
    return text if top1 is None else f"top-1 {format_fraction(top1, '.1%')}, {text}"


def _bench_caption(data: dict[str, Any]) -> str:
    s = data["settings"]
    mode = ("one request at a time" if data["mode"] == "latency"
            else "one request at a time per batch size; items/s = batch / median")
    reference = data.get("reference") or "-"
    measured = any(r["backend"] == reference for r in data["results"])
    reference = escape(reference)
    against = reference if measured else f"{reference}, run once untimed for its outputs"
    if data.get("reference_error"):
        against += f" (it failed: {escape(shorten(data['reference_error'], 120))})"
    text = (f"{mode}; warm-up ≥{s['warmup_iters']} runs and ≥{s['warmup_time']:g} s, then ≥{s['min_iters']} runs "
            f"and ≥{s['min_time']:g} s" + (f" and a ±{s['target_ci']:.0%} CI" if s.get("target_ci") else "")
            + f"; {s['input_sets']} seeded input sets (seed {s['seed']}); "
            f"{'each backend in its own process' if s['isolation'] else 'all backends in one process'}. "
            "±CI: 95% confidence interval of the median; vs fastest: median ratio at the same batch, ≈ when "
            f"the intervals overlap (within noise); max abs diff: against {against} on the same "
            "inputs; parity: every output within the row's precision's tolerance profile (hwkit check for details); "
            "peak RSS: the backend's process")
    if any(r.get("hit_max_time") for r in data["results"]):
        text += f"; *: stopped at --max-time ({s['max_time']:g} s) before the CI reached its target"
    few = sorted({row["runs"] for row in bench_rows(data) if row["median_s"] is not None and row["ci_half_width"] is None})
    if few:  # MIN_CI_SAMPLES of hwkit.measure.stats; report/ cannot import measure/
        text += (f"; ±CI -: {'/'.join(map(str, few))} runs are too few for a 95% interval of the median (it needs "
                 "6 at least: raise --min-iters or --min-time), nor ≈")
    busy = [r for r in data["results"] if (r.get("machine") or {}).get("busy")]
    if busy:
        worst = max(busy, key=lambda r: float(r["machine"]["others_busy_cores"]))["machine"]
        text += (f"; !: THE MACHINE WAS BUSY: other processes kept up to {float(worst['others_busy_cores']):.1f} of "
                 f"{worst['usable_cores']} cores busy while these rows ran, so they are likely slower than on a free "
                 f"machine ({s['threads']} threads were used; --threads {worst['threads_that_fit']} fits what was free)")
    if has_precision_axis(data):
        text += ("; speed-up vs fp32: the same backend's fp32 median / this row's; Δ vs fp32: this row's outputs against "
                 "the same backend's fp32 row's (top-1 agreement for class scores, worst cosine over outputs); "
                 "baseline: fp32 run only for those columns; emulated: run without that precision's kernels "
                 "(docs/precision.md)")
    reasons = {f"{r['backend']} {r['precision']}": r["error"] for r in bench_rows(data) if r["status"] == "unsupported"}
    if reasons:
        text += "; UNSUPPORTED (the backend declares it cannot run that precision): " + "; ".join(
            f"{escape(key)}: {escape(why)}" for key, why in reasons.items())
    if data["model"].get("flops"):
        text += ("; GFLOP/s: the graph's counted FLOPs / median; % peak: of the measured matmul peak in the row's "
                 "precision (hwkit peak; a runtime's convolutions can beat that matmul, so over 100% can be real)")
    if data.get("interrupted"):
        text += ". INTERRUPTED: partial results"
    return text


def run_summary(data: dict[str, Any]) -> str:
    """The closing line of a bench: how long the answer took and how sure it is."""
    rows = [row for row in bench_rows(data) if row["median_s"] is not None]
    widths = [row["ci_half_width"] for row in rows if row["ci_half_width"] is not None]
    worst = f"±{max(widths) * 100:.1f}%" if widths else "n/a"
    if len(widths) < len(rows):  # a median without a CI is not known to ±anything
        worst += f" ({len(rows) - len(widths)} of {len(rows)} without a CI: too few runs)"
    return f"finished in {data['elapsed_s']:.1f} s; widest 95% CI of a median: {worst}"


def parity_table(data: dict[str, Any]) -> Table:
    """One row per backend and output of a ``hwkit.check/1`` dict: errors, cosine, top-k,
    NaN/Inf, pass or fail."""
    tol = data["tolerance"]
    reference = data["reference"]
    outputs = [a for r in data["results"] if r["status"] == "ok" for a in r["outputs"]]
    vacuous = any(a["passed"] and a.get("vacuous") for a in outputs)
    precise = any((r.get("precision") or "fp32") != "fp32" for r in data["results"])
    table = Table(
        title=escape(f"hwkit check: {data['model']['name']} ({shapes_text(data['model']['shapes'])}), {data['inputs']}"),
        caption=(f"reference: {escape(reference['backend'])} ({escape(reference['why'])}); tolerance {tol['profile']}: "
                 f"|x - ref| <= {tol['atol']:g}·max(1, rms(ref)) + {tol['rtol']:g}·|ref| elementwise (float outputs); "
                 "max rel: |x - ref| / max(|ref|, rms(ref)); top-k: share of rows whose top-k classes match the "
                 "reference's"
                 + ("; [yellow]vacuous[/yellow]: every reference element is within the tolerance of 0, so an all-zero "
                    "output would pass too: lower --atol to test it" if vacuous else "")
                 + ("; precision: the row's, judged by that precision's tolerance profile (atol, rtol) against the "
                    "reference's fp32 outputs (docs/precision.md)" if precise else "")),
        box=box.SIMPLE_HEAD,
    )
    for column in ("backend", *(["precision"] if precise else []), "output", "max abs", "max rel", "mean abs", "cosine",
                   "top-1", "top-5", "NaN/Inf", "result"):
        text = column in ("backend", "output", "result", "precision")
        table.add_column(column, justify="left" if text else "right", no_wrap=not text, overflow="fold")
    for name, counts in reference["nonfinite"].items():
        table.add_row(escape(reference["backend"]), *(["fp32"] if precise else []), escape(name), "", "", "", "", "", "",
                      f"{counts['nan']}/{counts['inf']}", "reference")
    for result in data["results"]:
        label = [escape(result["backend"])] + ([_check_precision(result)] if precise else [])
        if result["status"] == "unsupported":
            table.add_row(*label, "-", "", "", "", "", "", "", "",
                          f"[yellow]unsupported[/yellow]: {escape(shorten(result['error']))}")
            continue
        if result["status"] != "ok":
            table.add_row(*label, "-", "", "", "", "", "", "", "", f"[red]{escape(result['status'])}[/red]")
            continue
        nonfinite = result.get("nonfinite", {})
        for a in result["outputs"]:
            counts = nonfinite.get(a["name"], {"nan": a["nan"], "inf": a["inf"]})
            table.add_row(*label, escape(a["name"]), format_error(a["max_abs"]), format_error(a["max_rel"]),
                          format_error(a["mean_abs"]), format_fraction(a["cosine"], ".6f"),
                          format_fraction(a["top1"], ".0%"), format_fraction(a["top5"], ".0%"),
                          f"{counts['nan']}/{counts['inf']}", _verdict(a))
    return table


def _check_precision(result: dict[str, Any]) -> str:
    precision = result.get("precision") or "fp32"
    tol = result.get("tolerance")
    profile = f" (atol {tol['atol']:g}, rtol {tol['rtol']:g})" if tol else ""
    return f"{precision}{' emulated' if result.get('emulated') else ''}{profile}"


def _verdict(a: dict[str, Any]) -> str:
    """Short, for the table; the full reason is in ``ParityReport.failures``."""
    if a["passed"]:
        return "[yellow]pass, vacuous[/yellow]" if a.get("vacuous") else "[green]pass[/green]"
    if not a["shape_ok"]:
        return "[red]FAIL[/red] shape"
    if a["nan"] or a["inf"]:
        return "[red]FAIL[/red] NaN/Inf"
    return f"[red]FAIL[/red] {a['violations']} el."


def bisect_table(data: dict[str, Any]) -> Table:
    """The diverging node of a ``hwkit.bisect/1`` dict, its inputs' agreement, its outputs' errors,
    and whether the graph's own outputs agree all the same."""
    tol = data["tolerance"]
    a, b = data["backends"]
    node = data["node"]
    constants = bool(node) and any(i["kind"] == "constant" for i in node["inputs"])
    precision = data.get("precision", "fp32")  # written since the precision axis
    title = escape(f"hwkit check --bisect: {data['model']['name']}, {a} vs {b}"
                   + ("" if precision == "fp32" else f" in {precision}") + f", {data['inputs']}")
    caption = (f"{len(data['trace'])} tensors compared in {data['rounds']} round(s); "
               f"tolerance {tol['profile']}: |b - a| <= {tol['atol']:g}·max(1, rms(a)) + {tol['rtol']:g}·|a|"
               + (f"; {len(data['skipped'])} tensor(s) skipped (no known type or not exposable)"
                  if data["skipped"] else "")
               + ("; constant: compiled into each backend, so bisect sees the graph's copy only, not a "
                  "backend's (a backend that rounds its weights shows as its kernel diverging)" if constants else ""))
    table = Table(title=title, caption=caption)
    for column in ("", "tensor", "kind", "max abs", "max rel", "result"):
        table.add_column(column)
    if not data["found"] or node is None:
        table.add_row("result", "-", "-", "", "", "[green]no tensor differs beyond tolerance[/green]")
        closest = _closest(data["trace"])
        if closest is not None:  # where they come closest to parting, for a sense of the margin
            ratio = closest.get("tol_ratio")
            share = f" ({float(ratio):.0%} of it)" if ratio is not None else ""
            table.add_row("closest", escape(closest["tensor"]), escape(f"{closest['op_type']} {closest['node']}"),
                          format_error(closest["max_abs"]), format_error(closest.get("max_rel")),
                          f"within tolerance{share}")
        return table
    table.add_row("node", f"[bold]{escape(node['name'])}[/bold]", escape(node["op_type"] or ""), "", "",
                  f"#{node['index']} in topological order")
    for given in node["inputs"]:
        if given["kind"] == "constant":
            table.add_row("input", escape(given["name"]), "constant", "", "", "[yellow]not observable[/yellow]")
            continue
        verdict = {None: "not compared", True: "[green]agrees[/green]", False: "[red]differs[/red]"}[given["passed"]]
        table.add_row("input", escape(given["name"]), given["kind"], format_error(given["max_abs"]), "", verdict)
    for out in node["outputs"]:
        verdict = "[green]agrees[/green]" if out["passed"] else f"[red]DIVERGES[/red] ({out['violations']} elements)"
        table.add_row("output", escape(out["name"]), "", format_error(out["max_abs"]), format_error(out["max_rel"]), verdict)
    for out in data.get("graph_outputs") or []:
        verdict = ("[green]within tolerance[/green]: the divergence does not reach it" if out["passed"]
                   else f"[red]beyond tolerance[/red] ({out['violations']} elements)")
        table.add_row("graph output", escape(out["name"]), "", format_error(out["max_abs"]), format_error(out["max_rel"]),
                      verdict)
    return table


def _closest(trace: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The tensor closest to its tolerance (|b - a| / (atol + rtol·|a|), older files: max abs);
    None when every tensor is bit-identical."""
    differing = [t for t in trace if number(t["max_abs"])]
    if not differing:
        return None
    return max(differing, key=lambda t: number(t["max_abs"] if t.get("tol_ratio") is None else t["tol_ratio"]) or 0.0)


def compare_table(changes: Sequence[Change], threshold: float) -> Table:
    """``hwkit compare``: per backend and batch, old and new median, the change and its verdict."""
    table = Table(title=f"hwkit compare (regression: > {threshold:.0%} slower and outside noise)")
    for column in ("model", "backend", "device", "batch", "precision", "old median", "new median", "change", "verdict"):
        table.add_column(column, justify="right" if column in ("batch", "old median", "new median", "change") else "left")
    for c in changes:
        verdict = c.verdict(threshold)
        style = "red" if verdict == "REGRESSED" else "green" if verdict == "faster" else ""
        table.add_row(escape(c.model), escape(c.backend), escape(c.device), str(c.batch), c.precision,
                      format_time(c.old_median), format_time(c.new_median),
                      f"{(c.ratio - 1) * 100:+.1f}%", f"[{style}]{verdict}[/]" if style else verdict)
    return table
