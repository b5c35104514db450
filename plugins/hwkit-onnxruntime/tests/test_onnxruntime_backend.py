"""The onnxruntime backend: hwkit's conformance kit and its own options."""

from __future__ import annotations

import pytest

import hwkit
from hwkit.testing import BackendConformance, require_backend


class TestOnnxRuntimeConformance(BackendConformance):
    backend = "onnxruntime"


def test_onnxruntime_options():
    require_backend("onnxruntime")
    with hwkit.compile(hwkit.Model.builtin("mlp"), "onnxruntime", optimization="disable", spinning="false") as exe:
        assert exe.options.optimization == "disable" and exe.options.spinning is False
    with pytest.raises(hwkit.OptionError, match="optimization must be one of"):
        hwkit.compile(hwkit.Model.builtin("mlp"), "onnxruntime", optimization="max")
