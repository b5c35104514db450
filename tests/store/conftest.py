"""Fixtures of the results-database tests: one real result, a private database per test, and the
CLI in-process."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import hwkit
from hwkit.cli import main
from hwkit.store.database import DB_ENV
from hwkit.testing.backends import fake_backends
from tests.helpers import cli


@pytest.fixture(autouse=True)
def private_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$HWKIT_DB in the test's own folder: no test touches the user's database; HWKIT_SAVE unset."""
    path = tmp_path / "results.sqlite3"
    monkeypatch.setenv(DB_ENV, str(path))
    monkeypatch.delenv("HWKIT_SAVE", raising=False)
    return path


@pytest.fixture(scope="module")
def measured() -> dict[str, Any]:
    """A real bench result of two backends (6 runs each, so with CIs), as ``to_dict`` gives it."""
    with fake_backends():
        result = hwkit.bench("mlp", ["fake", "timed"], min_time=0.0, min_iters=6, warmup_iters=1, warmup_time=0.0,
                             isolation=False, efficiency=False, target_ci=None)
    data: dict[str, Any] = json.loads(result.to_json())
    return data


@pytest.fixture
def result(measured: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``measured`` that a test may change."""
    return copy.deepcopy(measured)


def steady(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every measured row's 95% CI at ±1% of its median: a machine busy with other
    tests must not make a planted regression look like noise."""
    data = copy.deepcopy(data)
    for row in data["results"]:
        if row["latency_s"]:
            median = row["latency_s"]["median"]
            row["latency_s"].update(ci_low=median * 0.99, ci_high=median * 1.01)
            row["ci_half_width"] = 0.01
    return data


def slowed(data: dict[str, Any], backend: str, factor: float) -> dict[str, Any]:
    """``data`` with every latency figure of ``backend`` multiplied by ``factor``: a planted regression."""
    data = copy.deepcopy(data)
    for row in data["results"]:
        if row["backend"] == backend and row["latency_s"]:
            for key, value in row["latency_s"].items():
                if key != "count" and isinstance(value, (int, float)):
                    row["latency_s"][key] = value * factor
            row["samples_s"] = [s * factor for s in row["samples_s"]]
            row["items_per_s"] = row["items_per_s"] / factor
    return data




BENCH_FAST = ("--no-isolation", "--min-iters", "6", "--min-time", "0", "--warmup", "1", "--warmup-time", "0",
              "--target-ci", "0")
