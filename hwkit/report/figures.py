"""The plots of the HTML report (inline SVG) and of ``hwkit trend`` (PNG), drawn from result dicts
with matplotlib's object API (no pyplot: no global figure state, no display needed).

matplotlib is optional (``hwkit[plot]``) and imported only inside these functions.
"""

from __future__ import annotations

import datetime
import io
import math
from collections.abc import Sequence
from typing import Any


MS = 1e3  # seconds -> milliseconds


def _ms(value: Any) -> float:
    """Seconds of a result dict (a number, or "nan"/"inf") in milliseconds."""
    return float(value) * MS


def _plain(text: Any) -> str:
    """``text`` shown literally: matplotlib would read "$...$" in a label as math."""
    return str(text).replace("$", r"\$")


def _render(figure: Any, kind: str, salt: str) -> bytes:
    import matplotlib

    # Text stays text (searchable, escaped by the SVG writer); a fixed salt per figure gives the
    # same file for the same result and distinct ids for several figures inlined in one page.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"hwkit-{salt}"}):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=kind, dpi=110, metadata={"Date": None} if kind == "svg" else None)
    return buffer.getvalue()


def _svg(figure: Any, salt: str) -> str:
    text = _render(figure, "svg", salt).decode("utf-8")
    return text[text.index("<svg"):]  # no XML prolog or doctype inside an HTML document


def _label(row: dict[str, Any]) -> str:
    parts = [row["backend"], row["device"], str(row.get("precision") or "fp32")]
    return " ".join(map(str, parts))


def measured(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a bench result dict with a latency."""
    return [r for r in data["results"] if r.get("status") == "ok" and r.get("latency_s")]


def latency_svg(data: dict[str, Any]) -> str:
    """Median latency per row at the first batch size, with its 95% CI as whiskers."""
    from matplotlib.figure import Figure

    batch = min(int(b) for b in data["model"]["shapes"]) if data["model"]["shapes"] else 1
    rows = [r for r in measured(data) if int(r["batch"]) == batch]
    figure = Figure(figsize=(7, 1.4 + 0.42 * max(len(rows), 1)), layout="constrained")
    axes = figure.subplots()
    stats = [r["latency_s"] for r in rows]
    medians = [_ms(s["median"]) for s in stats]
    lows = [_ms(s["median"]) - _ms(s["ci_low"]) if s.get("ci_low") is not None else 0.0 for s in stats]
    highs = [_ms(s["ci_high"]) - _ms(s["median"]) if s.get("ci_high") is not None else 0.0 for s in stats]
    labels = [_plain(_label(r)) for r in rows]
    axes.barh(range(len(rows)), medians, xerr=[lows, highs], capsize=5, color="#4C72B0")
    axes.set_yticks(range(len(rows)), labels)
    axes.invert_yaxis()  # the table's order, top to bottom
    axes.set_xlabel("median latency (ms), whiskers: 95% CI of the median")
    axes.set_title(_plain(f"{data['model']['name']}, batch {batch}"), loc="left")
    return _svg(figure, "latency")


def has_batch_sweep(data: dict[str, Any]) -> bool:
    return len({int(r["batch"]) for r in measured(data)}) > 1


def throughput_svg(data: dict[str, Any]) -> str:
    """Items per second against batch size, one line per backend, device and precision."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    series: dict[str, list[tuple[int, float]]] = {}
    for row in measured(data):
        series.setdefault(_label(row), []).append((int(row["batch"]), int(row["batch"]) / float(row["latency_s"]["median"])))
    for label, points in series.items():
        points.sort()
        axes.plot([b for b, _ in points], [v for _, v in points], marker="o", label=_plain(label))
    axes.set_xscale("log", base=2)
    values = [v for points in series.values() for _, v in points if v > 0]
    if values and max(values) > 20 * min(values):  # backends far apart: a linear axis flattens the slow ones
        axes.set_yscale("log")
    axes.set_xlabel("batch size")
    axes.set_ylabel("items / s")
    axes.set_title("throughput against batch size", loc="left")
    axes.legend(fontsize="small")
    return _svg(figure, "throughput")


def has_precision(data: dict[str, Any]) -> bool:
    """Whether a measured row runs in another precision than fp32 (rows without one are fp32)."""
    return any((r.get("precision") or "fp32") != "fp32" for r in measured(data))


def accuracy_svg(data: dict[str, Any]) -> str:
    """Median latency against the largest difference from the reference's outputs, one point per
    row but the reference's own: what each precision (and backend) buys and costs."""
    from matplotlib.figure import Figure

    rows = [r for r in measured(data) if r.get("max_abs_diff") is not None]
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    axes = figure.subplots()
    diffs = [float(r["max_abs_diff"]) for r in rows]
    medians = [_ms(r["latency_s"]["median"]) for r in rows]
    axes.scatter(diffs, medians, color="#DD8452")
    for row, x, y in zip(rows, diffs, medians):
        axes.annotate(_plain(f"{_label(row)} b{row['batch']}"), (x, y), textcoords="offset points", xytext=(4, 4),
                      fontsize="small")
    if diffs and all(d > 0 and math.isfinite(d) for d in diffs):
        axes.set_xscale("log")
    axes.set_xlabel("max |difference| from the reference's outputs (lower: more accurate)")
    axes.set_ylabel("median latency (ms)")
    axes.set_title("speed against accuracy" if rows else "speed against accuracy: no row has both", loc="left")
    return _svg(figure, "accuracy")


def trend_png(points: Sequence[dict[str, Any]], title: str) -> bytes:
    """PNG of ``hwkit trend``: each series' median with its 95% CI over the time its runs were
    saved. ``points``: dicts of ``hwkit.store.runs.trend_points`` with a ``series`` label."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.subplots()
    series: dict[str, list[dict[str, Any]]] = {}
    for point in points:
        series.setdefault(point["series"], []).append(point)
    for label, members in series.items():
        times: list[Any] = [datetime.datetime.fromisoformat(p["saved_utc"]) for p in members]
        medians = [p["median_s"] * MS for p in members]
        low = [(p["median_s"] - p["ci_low_s"]) * MS if p["ci_low_s"] is not None else 0.0 for p in members]
        high = [(p["ci_high_s"] - p["median_s"]) * MS if p["ci_high_s"] is not None else 0.0 for p in members]
        axes.errorbar(times, medians, yerr=[low, high], marker="o", capsize=4, label=_plain(label))
    axes.set_ylabel("median latency (ms), 95% CI")
    axes.set_xlabel("saved (UTC)")
    axes.set_title(_plain(title), loc="left")
    axes.legend(fontsize="small")
    figure.autofmt_xdate()
    return _render(figure, "png", "trend")
