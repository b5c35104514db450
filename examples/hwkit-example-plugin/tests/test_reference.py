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


def _hwkit(*args: str) -> "subprocess.CompletedProcess[str]":
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "hwkit.cli", *args], capture_output=True, text=True, timeout=300)


def test_installed_plugin_end_to_end() -> None:
    """What docs/writing-plugins.md promises: listed, benchmarked, checked, from the command line."""
    import json

    listing = {b["name"]: b for b in json.loads(_hwkit("backends", "--json").stdout)}
    assert listing["reference"]["status"] == "available"
    assert listing["reference"]["distribution"] == "hwkit-example-plugin"
    bench = _hwkit("bench", "mlp", "-b", "reference,onnxruntime", "--min-time", "0.05", "--min-iters", "3",
                   "--warmup", "1", "--warmup-time", "0", "--target-ci", "0")
    assert bench.returncode == 0, bench.stderr
    assert "reference" in bench.stdout and "pass" in bench.stdout
    check = _hwkit("check", "mlp", "-b", "reference")
    assert check.returncode == 0, check.stdout + check.stderr
