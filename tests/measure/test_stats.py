"""Statistics on samples whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from hwkit.measure.stats import BOOTSTRAP_MAX_SAMPLES, summarize


def test_summary_of_known_samples():
    samples = [float(v) for v in range(1, 101)]  # 1..100
    s = summarize(samples)
    assert s.count == 100 and s.median == 50.5 and s.mean == 50.5 and s.min == 1 and s.max == 100
    assert s.p90 == pytest.approx(90.1) and s.p99 == pytest.approx(99.01)
    assert s.std == pytest.approx(np.std(samples, ddof=1))
    assert s.ci_low < 50.5 < s.ci_high and s.ci_high - s.ci_low < 25


@pytest.mark.parametrize("n", [200, BOOTSTRAP_MAX_SAMPLES + 1000])
def test_median_ci_covers_the_true_median_about_95_percent(n):
    """Draw from a distribution with a known median (lognormal: exp(0) = 1) many times."""
    rng = np.random.default_rng(7)
    trials = 200
    covered = sum(
        (s := summarize(rng.lognormal(0.0, 0.5, n), seed=t)).ci_low <= 1.0 <= s.ci_high for t in range(trials)
    )
    assert 0.88 <= covered / trials <= 0.995, covered


def test_overlap_means_within_noise():
    rng = np.random.default_rng(0)
    a = summarize(rng.normal(10, 0.1, 300))
    b = summarize(rng.normal(10, 0.1, 300))
    c = summarize(rng.normal(11, 0.1, 300))
    assert a.overlaps(b) and not a.overlaps(c)
    assert a.ci_half_width < 0.01


def test_a_single_sample_has_no_interval():
    # A point "interval" would claim certainty; tests/measure/test_hardening.py covers 2-5 samples.
    s = summarize([0.5])
    assert s.ci_low is None and s.ci_high is None and s.ci_half_width is None
    assert s.median == 0.5 and s.std == 0.0
