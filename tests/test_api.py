"""The library API with a fake backend: compile, run, options, errors, bench."""

from __future__ import annotations

import numpy as np
import pytest

import hwkit
from hwkit import BackendNotFoundError, BackendUnavailableError, ExecutionError, ModelError, OptionError
from hwkit.measure.bench import BenchSettings, bench
from tests.helpers import add_relu_model

FAST = dict(min_time=0.02, min_iters=5, warmup_iters=1, warmup_time=0.0, isolation=False, target_ci=None)  # the fake lives in this process


def test_backends_lists_status_and_reason(fake_registry):
    infos = {b.name: b for b in hwkit.backends()}
    assert infos["fake"].status == "available" and infos["fake"].devices[0].name == "cpu"
    assert infos["offline"].status == "unavailable"
    assert infos["offline"].reason == "the offline SDK is not installed"


def test_compile_and_run(fake_registry):
    model = hwkit.Model.load(add_relu_model())
    x = np.array([[1, 2, 3, 4], [-1, -2, -3, -4]], np.float32)
    with hwkit.compile(model, "fake") as exe:
        y = exe.run({"x": x})["y"]
    np.testing.assert_allclose(y, np.maximum(x + [0.5, -0.5, 1, -1], 0))
    with pytest.raises(ExecutionError, match="closed"):
        exe.run({"x": x})


def test_run_checks_inputs(fake_registry):
    with hwkit.compile(add_relu_model(), "fake") as exe:
        with pytest.raises(ModelError, match="did you mean 'x'"):
            exe.run({"xx": np.ones((2, 4), np.float32)})


def test_options_are_validated(fake_registry):
    model = add_relu_model()
    with pytest.raises(OptionError, match="unknown option.*speed.*valid options: threads, precision, scale"):
        hwkit.compile(model, "fake", speed=3)
    with pytest.raises(OptionError, match="threads must be a whole number"):
        hwkit.compile(model, "fake", threads=0)
    with pytest.raises(OptionError, match="option scale takes float"):
        hwkit.compile(model, "fake", scale="fast")
    assert hwkit.compile(model, "fake", scale="2.5").options.scale == 2.5


def test_unknown_and_unavailable_backends(fake_registry):
    with pytest.raises(BackendNotFoundError, match="did you mean 'fake'"):
        hwkit.compile(add_relu_model(), "fakes")
    with pytest.raises(BackendUnavailableError, match="offline SDK is not installed"):
        hwkit.compile(add_relu_model(), "offline")
    with pytest.raises(BackendUnavailableError, match="no device 'gpu'; its devices: cpu"):
        hwkit.compile(add_relu_model(), "fake:gpu")


def test_bench_compares_outputs_with_the_reference(fake_registry):
    model = hwkit.Model.load(add_relu_model())
    result = bench(model, ["onnxruntime", "fake"], BenchSettings(**FAST, options={"fake": {"scale": 2.0}}))
    assert result.reference == "onnxruntime"
    ort, fake = result.results
    assert ort.ok and fake.ok and ort.summary.count >= 5 and fake.summary.count >= 5
    assert ort.max_abs_diff == 0.0
    assert fake.max_abs_diff > 0.5, "an output scaled by 2 must show up as a difference"
    assert fake.options == {"threads": result.settings.resolved_threads(), "precision": "fp32", "scale": 2.0}
    data = result.to_dict()
    assert data["schema"] == "hwkit.bench/2" and data["model"]["sha256"] == model.sha256
    assert data["results"][1]["latency_s"]["median"] > 0


def test_bench_keeps_going_after_a_failing_backend(fake_registry):
    result = bench(add_relu_model(), ["fake", "onnxruntime"], BenchSettings(**FAST, options={"fake": {"bogus": 1}}))
    fake, ort = result.results
    assert fake.status == "failed" and "unknown option" in fake.error
    assert ort.ok


def test_bench_refuses_unknown_backend_before_measuring(fake_registry):
    with pytest.raises(BackendNotFoundError):
        bench(add_relu_model(), ["fake", "nope"], BenchSettings(**FAST))


def test_every_backend_gets_the_same_inputs(fake_registry, monkeypatch):
    seen = []
    from hwkit.testing import backends as fake_backend

    original = fake_backend.FakeExecutable.execute

    def spy(self, inputs):
        seen.append(inputs["x"].copy())
        return original(self, inputs)

    monkeypatch.setattr(fake_backend.FakeExecutable, "execute", spy)
    bench(add_relu_model(), ["fake"], BenchSettings(**FAST, input_sets=3))
    distinct = {a.tobytes() for a in seen}
    assert len(distinct) == 3, "inputs rotate among the seeded sets"
    first_run = len(seen)
    bench(add_relu_model(), ["fake"], BenchSettings(**FAST, input_sets=3))
    np.testing.assert_array_equal(seen[first_run], seen[0])  # same seed, same arrays, every time
