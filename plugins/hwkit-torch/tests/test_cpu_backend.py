"""The cpu backend against onnxruntime on the built-in models, eager and torch.compile'd."""

from __future__ import annotations

import numpy as np
import pytest

import hwkit
from hwkit.errors import UnsupportedOpError
from hwkit.testing import BackendConformance, require_backend

pytest.importorskip("torch")


class TestCpuConformance(BackendConformance):
    backend = "cpu"


@pytest.mark.parametrize("name", ["mlp", "cnn", "encoder"])
def test_matches_onnxruntime(name):
    require_backend("cpu")
    require_backend("onnxruntime")
    model = hwkit.Model.builtin(name)
    inputs = model.make_inputs(dims={"batch": 2}, seed=5)
    with hwkit.compile(model, "onnxruntime") as ref, hwkit.compile(model, "cpu", threads=2) as exe:
        expected, actual = ref.run(inputs), exe.run(inputs)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnn", "encoder"])
def test_torch_compile_fullgraph(name):
    require_backend("cpu")
    model = hwkit.Model.builtin(name)
    inputs = model.make_inputs(seed=1)
    with hwkit.compile(model, "cpu", compile="default") as compiled, hwkit.compile(model, "cpu") as eager:
        a, b = compiled.run(inputs), eager.run(inputs)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-3, atol=1e-4)


def test_unsupported_ops_listed_at_compile():
    require_backend("cpu")
    from tests.helpers import unknown_ops_model

    with pytest.raises(UnsupportedOpError) as caught:
        hwkit.compile(unknown_ops_model(), "cpu")
    assert len(caught.value.ops) == 2
