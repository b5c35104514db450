"""Summary statistics of latency samples, with a bootstrap confidence interval of the median."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_MAX_SAMPLES = 5000  # above this, the order-statistic interval (see median_ci)


@dataclasses.dataclass(frozen=True)
class Summary:
    """Latency statistics in seconds over ``count`` timed runs."""

    count: int
    median: float
    mean: float
    std: float
    min: float
    max: float
    p90: float
    p99: float
    ci_low: float  # bootstrap 95% confidence interval of the median
    ci_high: float

    @property
    def ci_half_width(self) -> float:
        """Half the CI's width relative to the median (0.02 = ±2%)."""
        return (self.ci_high - self.ci_low) / 2 / self.median if self.median else float("inf")

    def overlaps(self, other: Summary) -> bool:
        """Whether the two medians' intervals overlap: their difference is within noise."""
        return self.ci_low <= other.ci_high and other.ci_low <= self.ci_high


def summarize(samples: Sequence[float], seed: int = 0) -> Summary:
    """Statistics of ``samples`` (seconds). The bootstrap is seeded so reports are repeatable."""
    data = np.asarray(samples, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no samples to summarize")
    low, high = median_ci(data, seed)
    return Summary(
        count=int(data.size),
        median=float(np.median(data)),
        mean=float(data.mean()),
        std=float(data.std(ddof=1)) if data.size > 1 else 0.0,
        min=float(data.min()),
        max=float(data.max()),
        p90=float(np.percentile(data, 90)),
        p99=float(np.percentile(data, 99)),
        ci_low=low,
        ci_high=high,
    )


def order_statistic_ci(data: np.ndarray) -> tuple[float, float]:
    """Distribution-free 95% interval of the median: order statistics at ranks n/2 ± 1.96·√n/2
    (the normal approximation of Binomial(n, 1/2))."""
    n = data.size
    half = 1.959963984540054 * np.sqrt(n) / 2
    lo = max(int(np.floor(n / 2 - half)), 0)
    hi = min(int(np.ceil(n / 2 + half)), n - 1)
    ranks = np.partition(data, (lo, hi))
    return float(ranks[lo]), float(ranks[hi])


def order_statistic_half_width(samples: list[float]) -> float:
    """Half the order-statistic interval's width relative to the median (0.02 = ±2%)."""
    data = np.asarray(samples)
    if data.size < 2:
        return float("inf")
    low, high = order_statistic_ci(data)
    median = float(np.median(data))
    return (high - low) / 2 / median if median > 0 else float("inf")


def median_ci(data: np.ndarray, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """95% confidence interval of the median.

    A percentile bootstrap up to BOOTSTRAP_MAX_SAMPLES samples; beyond that the bootstrap's
    cost grows with n while it converges to the distribution-free order-statistic interval
    (ranks from Binomial(n, 1/2)), which is then used directly.
    """
    if data.size < 2:
        value = float(data[0])
        return value, value
    if data.size > BOOTSTRAP_MAX_SAMPLES:
        return order_statistic_ci(data)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(BOOTSTRAP_RESAMPLES, data.size))
    medians = np.median(data[picks], axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))
