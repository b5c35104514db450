"""Fixtures of the precision tests: the ``sweep`` registry (the fake backends plus this folder's
precision-declaring ones) and a stand-in for the int8 quantiser."""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest

from hwkit.plugins import Registry
from tests.precision import backends


@pytest.fixture
def sweep(fake_registry: Registry) -> Iterator[Registry]:
    fake_registry.register(backends, "precision-test-backends")
    backends.COMPILED.clear()
    yield fake_registry


@pytest.fixture
def fake_quantizer(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """hwkit.model.quantize replaced by one whose quantize_int8 returns the graph unchanged
    (renamed "int8") and records each call."""
    calls: list[dict[str, object]] = []
    module = types.ModuleType("hwkit.model.quantize")

    def quantize_int8(model, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        return backends.fake_quantize_int8(model, **kwargs)

    module.quantize_int8 = quantize_int8  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "hwkit.model.quantize", module)
    return calls
