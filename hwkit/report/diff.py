"""Comparing two saved bench results: what got faster or slower, and whether it is noise."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from hwkit.errors import ModelError
from hwkit.report.tables import BENCH_SCHEMA

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


def load_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError as e:
        raise ModelError(f"result file not found: {path}") from e
    except (OSError, ValueError) as e:
        raise ModelError(f"{path} is not a readable JSON result ({e}); write one with hwkit bench --json") from e
    if not isinstance(data, dict) or data.get("schema") != BENCH_SCHEMA:
        raise ModelError(f"{path} is not a hwkit bench result (schema {BENCH_SCHEMA}); write one with hwkit bench --json")
    return data


def compare_results(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[Change], list[Key], list[Key]]:
    """Changes for rows in both; and the keys only in the old and only in the new result."""
    before, after = _rows(old), _rows(new)
    changes = []
    for key in before.keys() & after.keys():
        a, b = before[key], after[key]
        overlap = a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"]
        changes.append(Change(*key, a["median"], b["median"], overlap))
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
