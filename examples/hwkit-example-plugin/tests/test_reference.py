"""The reference backend against hwkit's conformance kit: this one class is all a plugin needs."""

from __future__ import annotations

import pytest

import hwkit
from hwkit.testing import BackendConformance, small_graphs


class TestReference(BackendConformance):
    backend = "reference"


def test_verbose_is_validated() -> None:
    with pytest.raises(hwkit.OptionError, match="verbose"):
        hwkit.compile(small_graphs()["add_relu"], "reference", verbose=9)
