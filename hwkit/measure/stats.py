"""Summary statistics of latency samples, with a 95% confidence interval of the median."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_MAX_SAMPLES = 5000  # above this, the order-statistic interval (see median_ci)
# Below this many samples no interval of the median reaches 95%: even [min, max] covers it with
# probability 1 - 2·(1/2)^n only (93.8% at n = 5, 96.9% at n = 6). Fewer samples: no CI at all.
MIN_CI_SAMPLES = 6
# Below this, the exact binomial interval instead of the bootstrap, which under-covers on small
# samples (86-94% measured at n = 6..20 on lognormal draws; 96% at n = 30).
EXACT_BELOW = 30
_Z95 = 1.959963984540054


@dataclasses.dataclass(frozen=True)
class Summary:
    """Latency statistics in seconds over ``count`` timed runs.

    ``ci_low`` / ``ci_high`` bound a 95% confidence interval of the median; both are None with
    fewer than MIN_CI_SAMPLES samples, where no such interval exists.
    """

    count: int
    median: float
    mean: float
    std: float
    min: float
    max: float
    p90: float
    p99: float
    ci_low: float | None
    ci_high: float | None

    @property
    def ci_half_width(self) -> float | None:
        """Half the CI's width relative to the median (0.02 = ±2%); None without a CI."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2 / self.median if self.median else float("inf")

    def overlaps(self, other: Summary) -> bool:
        """Whether the two medians' intervals overlap: their difference is within noise. False
        when either has no interval: too few samples to say it is noise."""
        if None in (self.ci_low, self.ci_high, other.ci_low, other.ci_high):
            return False
        return self.ci_low <= other.ci_high and other.ci_low <= self.ci_high  # type: ignore[operator]


def summarize(samples: Sequence[float], seed: int = 0) -> Summary:
    """Statistics of ``samples`` (seconds). The bootstrap is seeded so reports are repeatable."""
    data = np.asarray(samples, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no samples to summarize")
    low, high = median_ci(data, seed) or (None, None)
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


def order_statistic_ranks(n: int) -> tuple[int, int] | None:
    """0-based ranks (lo, hi) of the distribution-free 95% interval of the median of n samples:
    the widest k with P(Binomial(n, 1/2) < k) <= 2.5%, exactly below EXACT_BELOW, else by the
    normal approximation n/2 ± 1.96·√n/2. None below MIN_CI_SAMPLES."""
    if n < MIN_CI_SAMPLES:
        return None
    if n < EXACT_BELOW:
        below, lo = 0, -1
        while (below := below + math.comb(n, lo + 1)) / 2**n <= 0.025:
            lo += 1
        return lo, n - 1 - lo
    half = _Z95 * math.sqrt(n) / 2
    return max(math.floor(n / 2 - half), 0), min(math.ceil(n / 2 + half), n - 1)


def order_statistic_ci(data: np.ndarray) -> tuple[float, float] | None:
    """Distribution-free 95% interval of the median: the order statistics at
    ``order_statistic_ranks``; None below MIN_CI_SAMPLES samples."""
    ranks = order_statistic_ranks(data.size)
    if ranks is None:
        return None
    ordered = np.partition(data, ranks)
    return float(ordered[ranks[0]]), float(ordered[ranks[1]])


def order_statistic_half_width(samples: list[float]) -> float:
    """Half the order-statistic interval's width relative to the median (0.02 = ±2%); infinite
    while there are too few samples for an interval."""
    data = np.asarray(samples)
    interval = order_statistic_ci(data)
    if interval is None:
        return float("inf")
    low, high = interval
    median = float(np.median(data))
    return (high - low) / 2 / median if median > 0 else float("inf")


def median_ci(data: np.ndarray, seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """95% confidence interval of the median, or None below MIN_CI_SAMPLES samples.

    The exact order-statistic interval below EXACT_BELOW samples; a percentile bootstrap up to
    BOOTSTRAP_MAX_SAMPLES; beyond that the bootstrap's cost grows with n while it converges to the
    distribution-free order-statistic interval (ranks from Binomial(n, 1/2)), used directly.
    """
    if data.size < EXACT_BELOW or data.size > BOOTSTRAP_MAX_SAMPLES:
        return order_statistic_ci(data)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(BOOTSTRAP_RESAMPLES, data.size))
    medians = np.median(data[picks], axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))
