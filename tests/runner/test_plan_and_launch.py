"""hwkit.runner: one reference rule for every scenario, one input planner, and launchers that
turn any failure into the record's status."""

from __future__ import annotations

import numpy as np
import pytest

import hwkit.runner.plan
from hwkit.errors import BackendNotFoundError, OptionError
from hwkit.measure.bench import BenchSettings, bench
from hwkit.measure.records import BackendResult
from hwkit.runner.launch import InlineLauncher, Job, ProcessLauncher
from hwkit.runner.plan import make_input_sets, plan
from tests.helpers import add_relu_model

QUICK = dict(warmup_iters=1, warmup_time=0.0, min_iters=3, min_time=0.0, isolation=False, efficiency=False,
             target_ci=None)


def test_the_reference_rule(fake_registry, monkeypatch):
    model = add_relu_model()
    assert plan(model, ["fake"], reference="timed").reference_note == "chosen with --reference"
    chosen = plan(model, ["fake", "timed"])
    assert chosen.reference == "onnxruntime" and not chosen.reference_chosen  # available: runs anyway
    assert plan(model, ["fake", "onnxruntime"]).reference_chosen
    monkeypatch.setattr(hwkit.runner.plan, "DEFAULT_REFERENCE", "absent")
    fallback = plan(model, ["timed", "fake"])
    assert fallback.reference == "timed" and "first chosen backend" in fallback.reference_note
    with pytest.raises(BackendNotFoundError, match="no backend named 'nope'"):
        plan(model, ["fake"], reference="nope")


def test_bench_runs_an_unchosen_reference_untimed_for_its_outputs(fake_registry):
    result = bench(add_relu_model(), ["fake"], BenchSettings(**QUICK, options={"fake": {"scale": 3.0}}))
    assert [r.backend for r in result.results] == ["fake"]  # onnxruntime is not measured...
    assert result.reference == "onnxruntime" and result.results[0].parity_passed is False  # ...but compared with
    assert "run once untimed for its outputs" in result.table().caption


def test_input_sets(fake_registry):
    model = hwkit.Model.load(add_relu_model(dynamic=True))
    seeded = make_input_sets(model, dims={"batch": 3}, seed=5, count=2)
    assert seeded.shapes == {"x": (3, 4)} and seeded.described == "seeds 5..6" and len(seeded.sets) == 2
    assert not np.array_equal(seeded.sets[0]["x"], seeded.sets[1]["x"])
    again = make_input_sets(model, dims={"batch": 3}, seed=5, count=2)
    assert np.array_equal(seeded.sets[1]["x"], again.sets[1]["x"])  # seeded: every backend gets the same
    given = make_input_sets(model, given={"x": np.ones((2, 4), np.float32)})
    assert given.shapes == {"x": (2, 4)} and given.described == "caller's arrays"
    assert make_input_sets(model, batch=8).shapes == {"x": (8, 4)}
    with pytest.raises(OptionError, match="dynamic leading dimension"):
        make_input_sets(hwkit.Model.load(add_relu_model()), batch=8)


def test_the_inline_launcher_records_a_failure_instead_of_raising(fake_registry):
    launcher = InlineLauncher()
    record = BackendResult("fake")
    job = Job("hwkit.measure.loop:measure", hwkit.Model.load(add_relu_model()), "fake:tpu", record,
              {"input_sets": [{"x": np.ones((2, 4), np.float32)}], "settings": BenchSettings(**QUICK)})
    assert launcher.launch(job) is record
    assert record.status == "failed" and record.error_type == "BackendUnavailableError"
    assert "has no device 'tpu'" in record.error


def test_the_process_launcher_reports_a_crash(tmp_path):
    record = BackendResult("onnxruntime")
    job = Job("tests.runner.jobs:crash", hwkit.Model.load(add_relu_model()), "onnxruntime", record, timeout=60)
    ProcessLauncher().launch(job)
    assert record.status == "crashed" and "SIGABRT" in record.error


def test_the_process_launcher_stops_a_job_at_its_timeout():
    record = BackendResult("onnxruntime")
    job = Job("tests.runner.jobs:hang", hwkit.Model.load(add_relu_model()), "onnxruntime", record, timeout=1.0)
    ProcessLauncher().launch(job)
    assert record.status == "timeout" and "no result after 1 s" in record.error


def test_every_hwkit_error_survives_a_process_boundary():
    import inspect
    import pickle

    from hwkit import errors

    for _, kind in inspect.getmembers(errors, lambda v: isinstance(v, type) and issubclass(v, errors.HwkitError)):
        error = kind("onnxruntime", {"Foo": ["n1"]}) if kind is errors.UnsupportedOpError else kind("why")
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is kind and str(again) == str(error)
    assert pickle.loads(pickle.dumps(errors.UnsupportedOpError("x", {"A": ["n"]}))).ops == {"A": ["n"]}
