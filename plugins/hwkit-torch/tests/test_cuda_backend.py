"""The cuda backend: real checks on an NVIDIA GPU; without one, every test skips with the reason."""

from __future__ import annotations

import numpy as np
import pytest

import hwkit
from hwkit.testing import BackendConformance, require_backend


def test_unavailable_says_why_or_lists_gpus():
    info = next((b for b in hwkit.backends() if b.name == "cuda"), None)
    if info is None:
        pytest.skip("hwkit-torch is not installed")
    if info.status == "available":
        assert all(d.name.startswith("cuda:") and d.kind == "gpu" for d in info.devices)
    else:
        assert info.status == "unavailable" and info.reason  # never a silent CPU fallback
        with pytest.raises(hwkit.BackendUnavailableError, match="cuda"):
            hwkit.compile(hwkit.Model.builtin("mlp"), "cuda")


class TestCudaConformance(BackendConformance):
    backend = "cuda"


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["mlp", "cnn", "encoder"])
def test_matches_onnxruntime(name):
    require_backend("cuda")
    model = hwkit.Model.builtin(name)
    inputs = model.make_inputs(dims={"batch": 4}, seed=2)
    with hwkit.compile(model, "onnxruntime") as ref, hwkit.compile(model, "cuda") as exe:
        expected, actual = ref.run(inputs), exe.run(inputs)
        stats = exe.memory_stats()
        assert exe.device_time(inputs) > 0
    assert stats["peak_allocated"] > 0
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], rtol=2e-3, atol=2e-4)  # fp32, TF32 off


@pytest.mark.gpu
@pytest.mark.parametrize("precision, atol", [("fp16", 5e-2), ("bf16", 2e-1)])
def test_reduced_precision_stays_close(precision, atol):
    require_backend("cuda")
    model = hwkit.Model.builtin("cnn")
    inputs = model.make_inputs(seed=0)
    with hwkit.compile(model, "onnxruntime") as ref, hwkit.compile(model, "cuda", precision=precision) as exe:
        expected, actual = ref.run(inputs)["logits"], exe.run(inputs)["logits"]
    assert actual.dtype == np.float32
    assert np.abs(actual - expected).max() < atol * max(1.0, np.abs(expected).max())


@pytest.mark.gpu
def test_cuda_graphs_replay_gives_the_same_outputs():
    require_backend("cuda")
    model = hwkit.Model.builtin("encoder")
    a, b = model.make_inputs(seed=0), model.make_inputs(seed=1)
    with hwkit.compile(model, "cuda") as plain, hwkit.compile(model, "cuda", cuda_graphs=True) as graphed:
        for inputs in (a, b, a):
            np.testing.assert_allclose(graphed.run(inputs)["hidden_states"], plain.run(inputs)["hidden_states"],
                                       rtol=1e-4, atol=1e-5)
