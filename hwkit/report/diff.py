"""Comparing two bench result dicts: what got faster or slower, and whether it is noise."""

from __future__ import annotations

import dataclasses
from typing import Any


Key = tuple[str, str, str, int]  # model, backend, device, batch


@dataclasses.dataclass(frozen=True)
class Change:
    """One backend's median before and after."""

    model: str
    backend: str
    device: str
    batch: int
    old_median: float
    new_median: float
    within_noise: bool  # the two 95% CIs of the median overlap

    @property
    def ratio(self) -> float:
        return self.new_median / self.old_median

    def regressed(self, threshold: float) -> bool:
        """Slower by more than ``threshold`` (0.05 = 5%) and not within noise."""
        return not self.within_noise and self.ratio > 1 + threshold

    def verdict(self, threshold: float) -> str:
        if self.within_noise:
            return "within noise"
        if self.regressed(threshold):
            return "REGRESSED"
        if self.ratio < 1:
            return "faster"
        return "slower (under threshold)"


def compare_results(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[Change], list[Key], list[Key]]:
    """Changes for rows in both; and the keys only in the old and only in the new result."""
    before, after = _rows(old), _rows(new)
    changes = []
    for key in before.keys() & after.keys():
        a, b = before[key], after[key]
        bounds = (a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"])
        # Without both CIs (too few runs: null) nothing says the change is noise.
        noise = None not in bounds and float(bounds[0]) <= float(bounds[3]) and float(bounds[2]) <= float(bounds[1])
        changes.append(Change(*key, float(a["median"]), float(b["median"]), noise))
    changes.sort(key=lambda c: (c.model, c.batch, c.backend, c.device))
    return changes, sorted(before.keys() - after.keys()), sorted(after.keys() - before.keys())


def _rows(data: dict[str, Any]) -> dict[Key, dict[str, float]]:
    model = data["model"]["name"]
    rows = {}
    for record in data["results"]:
        latency = record.get("latency_s")
        if record.get("status") == "ok" and latency:
            rows[(model, record["backend"], record["device"], int(record["batch"]))] = latency
    return rows
