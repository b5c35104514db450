"""Shared fixtures: a registry holding a fake backend that needs no runtime."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hwkit.plugins import Registry, reset_registry, registry
from tests import fake_backend


@pytest.fixture
def fake_registry() -> Iterator[Registry]:
    """The process registry replaced by one with the installed plugins plus the fake backends."""
    reset_registry()
    reg = registry()
    reg.register(fake_backend, "fake")
    yield reg
    reset_registry()
