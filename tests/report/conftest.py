"""Fixtures of the report tests: one real result to read, write, damage and compare."""

from __future__ import annotations

import json
from typing import Any

import pytest

import hwkit
from hwkit.testing.backends import fake_backends


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    """A real hwkit.bench/2 result of two backends (6 runs each, so with CIs), as ``to_json``
    writes it."""
    with fake_backends():
        result = hwkit.bench("mlp", ["fake", "timed"], min_time=0.0, min_iters=6, warmup_iters=1, warmup_time=0.0,
                             isolation=False, efficiency=False, target_ci=None)
    data: dict[str, Any] = json.loads(result.to_json())
    return data
