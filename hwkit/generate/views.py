"""Views of the generation results, rendered from their dicts (``hwkit.generate/1`` and
``hwkit.generate-check/1``), never from live objects: a table, Markdown and a plot."""

from __future__ import annotations

import io
from typing import Any

from rich.markup import escape
from rich.table import Table

from hwkit.report.format import format_error, format_time, shorten
from hwkit.report.schema import number

COLUMNS = ["backend", "device", "precision", "prompt", "batch", "cache", "TTFT", "ms/token", "p90", "±CI",
           "decode tok/s", "e2e tok/s", "peak RSS", "KV cache", "tokens"]


def bench_rows(data: dict[str, Any]) -> list[list[str]]:
    """One row of plain cells per (backend, precision, prompt, batch)."""
    rows = []
    for r in data["results"]:
        head = [r["backend"], r["device"] or "-", r["precision"], str(r["prompt"]), str(r["batch"])]
        if r["status"] != "ok" or not r["ttft_s"]:
            rows.append(head + [r["status"], shorten(r["error"] or "no timed generation")] + [""] * (len(COLUMNS) - 7))
            continue
        step = r["decode_step_s"]
        memory = r["memory"]
        same = r["same_tokens"]
        rows.append(head + [
            r["cache"],
            format_time(r["ttft_s"]["median"]),
            (f"{step['median'] * 1e3:.2f}" if step else "-") + (" !" if (r.get("machine") or {}).get("busy") else ""),
            f"{step['p90'] * 1e3:.2f}" if step else "-",
            _percent(number(r["decode_ci_half_width"])),
            _rate(r["decode_tokens_per_s"]),
            _rate(r["end_to_end_tokens_per_s"]),
            _mib(memory["peak_rss"]),
            _mib(memory["kv_cache_bytes"]),
            "reference" if r["is_reference"] else {True: "same", False: "DIFFER", None: "-"}[same],
        ])
    return rows


def bench_table(data: dict[str, Any]) -> Table:
    s = data["settings"]
    table = Table(title=escape(f"hwkit bench --generate: {data['model']['name']}, {s['new']} new tokens, greedy, "
                               f"{s['threads']} threads each"),
                  caption=("TTFT: prefill + first token (median of the timed runs); ms/token, p90, ±CI: decode steps "
                           "(95% CI of the median); decode tok/s: batch × steps / decode time; e2e: batch × new / "
                           "whole generation; cache: native = kept in the runtime's values, numpy = copied each step"
                           + _busy_note(data)))
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("backend", "device", "precision", "cache", "tokens")
                         else "right", no_wrap=column in ("backend", "TTFT"))
    for row in bench_rows(data):
        table.add_row(*(escape(cell) if cell != "DIFFER" else "[red]DIFFER[/red]" for cell in row))
    return table


def bench_markdown(data: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in bench_rows(data)]
    return "\n".join(lines) + "\n"


def check_table(data: dict[str, Any]) -> Table:
    table = Table(title=escape(f"hwkit check --generate: {data['model']['name']} against {data['reference']}, "
                               f"{data['settings']['new']} greedy tokens, {data['tolerance']['profile']} tolerance"),
                  caption="logits: the last position's, compared at every step up to the first differing token")
    for column in ("backend", "prompt", "batch", "tokens", "first differing step", "steps compared",
                   "worst max abs diff", "worst tol ratio", "logits", "verdict"):
        table.add_column(column, justify="left" if column in ("backend", "tokens", "verdict") else "right")
    for r in data["results"]:
        head = [escape(r["backend"]), str(r["prompt"]), str(r["batch"])]
        if r["status"] != "ok":
            table.add_row(*head, f"[red]{escape(r['status'])}[/red]", escape(shorten(r["error"])), "", "", "", "", "")
            continue
        if r["is_reference"]:
            table.add_row(*head, "reference", "", "", "", "", "", "")
            continue
        first = r["first_difference"]
        table.add_row(*head, "same" if first is None else "[red]DIFFER[/red]",
                      "-" if first is None else f"{first['step']} (row {first['row']})",
                      str(r["steps_compared"]), format_error(r["max_abs"]),
                      "-" if r["tol_ratio"] is None else f"{number(r['tol_ratio']):.3g}",
                      "[green]within[/green]" if r["logits_within"] else "[red]outside[/red]",
                      "[green]pass[/green]" if r["passed"] else "[red]FAIL[/red]")
    return table


def bench_png(data: dict[str, Any]) -> bytes:
    """Tokens/s against batch size per backend; time to first token against prompt length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in data["results"] if r["status"] == "ok" and r["ttft_s"]]
    figure, (speed, first) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key in dict.fromkeys((r["backend"], r["device"], r["precision"]) for r in done):
        label = " ".join(k for k in key if k and k != "fp32")
        mine = [r for r in done if (r["backend"], r["device"], r["precision"]) == key]
        longest = max(r["prompt"] for r in mine)
        points = sorted((r["batch"], r["decode_tokens_per_s"] or r["end_to_end_tokens_per_s"]) for r in mine
                        if r["prompt"] == longest)
        speed.plot([b for b, _ in points], [v for _, v in points], marker="o", label=label)
        widest = min(r["batch"] for r in mine)
        ttft = sorted((r["prompt"], r["ttft_s"]["median"] * 1e3) for r in mine if r["batch"] == widest)
        first.plot([p for p, _ in ttft], [t for _, t in ttft], marker="o", label=f"{label}, batch {widest}")
    speed.set_xscale("log", base=2)
    speed.set_xlabel("batch size")
    speed.set_ylabel("decode tokens / s")
    speed.set_title(f"{data['model']['name']}: decode throughput vs batch")
    first.set_xlabel("prompt length (tokens)")
    first.set_ylabel("time to first token (ms)")
    lengths = {r["prompt"] for r in done}
    first.set_title("time to first token vs prompt length" if len(lengths) > 1 else
                    "time to first token (--prompt 32,128,… draws a curve)")
    for axis in (speed, first):
        if axis.lines:
            axis.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def _rate(value: Any) -> str:
    figure = number(value)
    return "-" if figure is None else f"{figure:,.1f}"


def _mib(value: Any) -> str:
    return "-" if not value else f"{value / 2**20:,.1f} MiB"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"±{value * 100:.1f}%"


def _busy_note(data: dict[str, Any]) -> str:
    busy = [r["machine"] for r in data["results"] if (r.get("machine") or {}).get("busy")]
    if not busy:
        return ""
    worst = max(m["others_busy_cores"] for m in busy)
    fits = min(m["threads_that_fit"] for m in busy)
    return (f"; !: THE MACHINE WAS BUSY: other processes kept up to {worst:.1f} of {busy[0]['usable_cores']} cores "
            f"busy while those rows ran, so they are likely slower than on a free machine (--threads {fits} fits "
            "what was free)")
