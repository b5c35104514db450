"""Shared fixtures: registries holding test backends that need no runtime, and a chain model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hwkit
from hwkit.plugins import Registry
from hwkit.testing.backends import fake_backends
from tests import perturb_backend
from tests.perturb_backend import chain_model


@pytest.fixture
def fake_registry() -> Iterator[Registry]:
    """The process registry replaced by one with the installed plugins plus the fake backends
    that hwkit ships for wire-testing (hwkit.testing.backends)."""
    with fake_backends() as reg:
        yield reg


@pytest.fixture
def registry(fake_registry: Registry) -> Registry:
    """fake_registry plus the ``perturb`` backend, which changes one named node's output."""
    fake_registry.register(perturb_backend, "perturb")
    return fake_registry


@pytest.fixture
def chain() -> hwkit.Model:
    """A 10-node chain (n0 … n9), for locating a divergence."""
    return hwkit.Model.load(chain_model())
