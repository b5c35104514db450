"""Plots of a bench result (matplotlib, imported only here, only when a plot is asked for)."""

from __future__ import annotations

import io
from typing import Any


def bench_png(data: dict[str, Any]) -> bytes:
    """PNG bytes of a ``hwkit.bench/2`` dict: median latency per backend with 95% CI whiskers;
    with a batch sweep, also items/s against batch size; with precision rows, also speed against
    accuracy (``speed_vs_accuracy``)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    done = [r for r in data["results"] if r["status"] == "ok" and r.get("latency_s")]
    batches = [int(b) for b in data["model"]["shapes"]]
    sweep = len(batches) > 1
    precise = any((r.get("precision") or "fp32") != "fp32" for r in data["results"])
    panels = 1 + sweep + precise
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels if panels > 1 else 7, 4.5), squeeze=False)
    latency = axes[0][0]
    first_batch = batches[0]
    rows = [r for r in done if r["batch"] == first_batch]
    labels = [f"{r['backend']}\n{r['device']}" + (f"\n{r.get('precision') or 'fp32'}" if precise else "") for r in rows]
    stats = [r["latency_s"] for r in rows]
    medians = [s["median"] * 1e3 for s in stats]
    # No whisker where there is no CI (too few runs: ci_low/ci_high null); the bar says so instead.
    errors = [[(s["median"] - s["ci_low"]) * 1e3 if s["ci_low"] is not None else 0.0 for s in stats],
              [(s["ci_high"] - s["median"]) * 1e3 if s["ci_high"] is not None else 0.0 for s in stats]]
    bars = latency.bar(labels, medians, yerr=errors, capsize=6, color="#4C72B0")
    latency.bar_label(bars, ["" if s["ci_low"] is not None else "no CI: too few runs" for s in stats], fontsize=8)
    latency.set_ylabel("median latency (ms), 95% CI")
    latency.set_title(f"{data['model']['name']}, batch {first_batch}, {data['settings']['threads']} threads")
    if sweep:
        throughput = axes[0][1]
        for backend in dict.fromkeys(r["backend"] for r in done):
            points = sorted((r["batch"], r["batch"] / r["latency_s"]["median"]) for r in done if r["backend"] == backend)
            throughput.plot([b for b, _ in points], [v for _, v in points], marker="o", label=backend)
        throughput.set_xscale("log", base=2)
        throughput.set_xlabel("batch size")
        throughput.set_ylabel("items / s")
        throughput.set_title("throughput vs batch")
        throughput.legend()
    if precise:
        speed_vs_accuracy(axes[0][-1], rows)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def accuracy_of(row: dict[str, Any]) -> tuple[float, str] | None:
    """A row's accuracy against the reference's fp32 outputs, and its name: the top-1 agreement
    when the outputs are class scores, else the (worst) cosine similarity; None without one."""
    figures = (row.get("accuracy") or {}).get("vs_reference") or {}
    for key, name in (("top1", "top-1 agreement with the reference"), ("cosine", "cosine with the reference")):
        value = figures.get(key)
        if value is not None and value not in ("nan", "inf", "-inf"):
            return float(value), name
    return None


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats in both speed (x) and accuracy (y)."""
    return [i for i, (x, y) in enumerate(points)
            if not any((a >= x and b >= y) and (a > x or b > y) for a, b in points)]


def speed_vs_accuracy(axis: Any, rows: list[dict[str, Any]]) -> None:
    """items/s against accuracy, one point per backend × precision, the Pareto front joined."""
    known = [(r, accuracy_of(r)) for r in rows]
    placed = [(r, a) for r, a in known if a is not None]
    points = [(r["batch"] / r["latency_s"]["median"], a[0]) for r, a in placed]
    for (row, _), (x, y) in zip(placed, points):
        axis.scatter([x], [y], color="#4C72B0")
        axis.annotate(f"{row['backend']} {row.get('precision') or 'fp32'}", (x, y), fontsize=7,
                      textcoords="offset points", xytext=(4, 4))
    front = sorted((points[i] for i in pareto_front(points)), key=lambda p: p[0])
    if front:
        axis.plot([p[0] for p in front], [p[1] for p in front], color="#DD8452", marker="o", label="Pareto front")
        axis.legend(fontsize=8)
    names = sorted({a[1] for _, a in placed})
    axis.set_xlabel("items / s")
    axis.set_ylabel(" / ".join(names) or "no accuracy figures")
    axis.set_title("speed vs accuracy (upper right is better)")
