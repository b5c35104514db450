"""Plots of a bench result (matplotlib, imported only here)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from hwkit._files import atomic_write

if TYPE_CHECKING:
    from hwkit.measure.bench import BenchResult


def plot_bench(result: BenchResult, path: str) -> None:
    """Median latency per backend with 95% CI whiskers; with a batch sweep, also items/s vs batch."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    done = [r for r in result.results if r.ok]
    sweep = len(result.batches) > 1
    figure, axes = plt.subplots(1, 2 if sweep else 1, figsize=(12 if sweep else 7, 4.5), squeeze=False)
    latency = axes[0][0]
    first_batch = result.batches[0]
    rows = [r for r in done if r.batch == first_batch]
    labels = [f"{r.backend}\n{r.device}" for r in rows]
    medians = [r.summary.median * 1e3 for r in rows]  # type: ignore[union-attr]
    errors = [[(r.summary.median - r.summary.ci_low) * 1e3 for r in rows],  # type: ignore[union-attr]
              [(r.summary.ci_high - r.summary.median) * 1e3 for r in rows]]  # type: ignore[union-attr]
    latency.bar(labels, medians, yerr=errors, capsize=6, color="#4C72B0")
    latency.set_ylabel("median latency (ms), 95% CI")
    latency.set_title(f"{result.model.name}, batch {first_batch}, {result.settings.resolved_threads()} threads")
    if sweep:
        throughput = axes[0][1]
        for backend in dict.fromkeys(r.backend for r in done):
            points = sorted((r.batch, r.batch / r.summary.median) for r in done if r.backend == backend)  # type: ignore[union-attr]
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
    atomic_write(path, buffer.getvalue())
