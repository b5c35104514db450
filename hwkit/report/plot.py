"""Plots of a bench result (matplotlib, imported only here, only when a plot is asked for)."""

from __future__ import annotations

import io
from typing import Any


def bench_png(data: dict[str, Any]) -> bytes:
    """PNG bytes of a ``hwkit.bench/1`` dict: median latency per backend with 95% CI whiskers;
    with a batch sweep, also items/s against batch size."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    done = [r for r in data["results"] if r["status"] == "ok" and r.get("latency_s")]
    batches = [int(b) for b in data["model"]["shapes"]]
    sweep = len(batches) > 1
    figure, axes = plt.subplots(1, 2 if sweep else 1, figsize=(12 if sweep else 7, 4.5), squeeze=False)
    latency = axes[0][0]
    first_batch = batches[0]
    rows = [r for r in done if r["batch"] == first_batch]
    labels = [f"{r['backend']}\n{r['device']}" for r in rows]
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
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()
