"""The measuring loop with a backend of known timings, sweeps, outputs and comparisons."""

from __future__ import annotations

import json

import pytest

from hwkit.measure.bench import BenchSettings, bench
from hwkit.errors import OptionError
from tests.helpers import add_relu_model, run_cli

QUICK = dict(warmup_iters=2, warmup_time=0.0, min_iters=10, min_time=0.05, isolation=False, efficiency=False,
             target_ci=None)


def test_median_matches_the_known_run_time_and_warm_up_is_not_timed(fake_registry):
    settings = BenchSettings(**QUICK, options={"timed": {"delay": 0.01, "first_delay": 0.3}})
    (record,) = bench(add_relu_model(), ["timed"], settings).results
    stats = record.summary
    assert 0.0095 <= stats.median <= 0.02, stats.median  # sleep(10 ms) plus a little scheduling
    assert stats.max < 0.25, "the slow first run must stay out of the timed samples"
    assert record.first_run_s >= 0.3
    assert record.compile_s is not None


def test_a_device_timer_is_reported_beside_the_wall_clock(fake_registry):
    settings = BenchSettings(**QUICK, options={"timed": {"delay": 0.004}})
    on_gpu, on_cpu = bench(add_relu_model(), ["timed:gpu", "timed:cpu"], settings).results
    assert len(on_gpu.device_samples) == 20 and set(on_gpu.device_samples) == {0.002}
    assert on_cpu.device_samples == []
    data = bench(add_relu_model(), ["timed:gpu"], settings).to_dict()["results"][0]
    assert data["device_time_s"]["median"] == 0.002 and data["latency_s"]["median"] >= 0.004


def test_both_min_time_and_min_iters_are_honoured(fake_registry):
    by_time = bench(add_relu_model(), ["timed"], BenchSettings(**{**QUICK, "min_iters": 3, "min_time": 0.3},
                                                             options={"timed": {"delay": 0.01}})).results[0]
    assert sum(by_time.samples) >= 0.28 and by_time.summary.count >= 20
    by_count = bench(add_relu_model(), ["timed"], BenchSettings(**{**QUICK, "min_iters": 40, "min_time": 0.0},
                                                               options={"timed": {"delay": 0.001}})).results[0]
    assert by_count.summary.count == 40


def test_ci_target_extends_timing_until_met_or_max_time(fake_registry):
    options = {"timed": {"delay": 0.002}}
    loose = bench(add_relu_model(), ["timed"], BenchSettings(**{**QUICK, "target_ci": 0.5}, options=options)).results[0]
    assert not loose.hit_max_time and loose.summary.count < 200  # met at the minimums
    strict = bench(add_relu_model(), ["timed"],
                   BenchSettings(**{**QUICK, "target_ci": 1e-9, "max_time": 0.4}, options=options)).results[0]
    assert strict.hit_max_time and sum(strict.samples) > 0.3  # unreachable: timed until max_time


def test_max_time_stops_a_slow_backend_and_says_so(fake_registry):
    settings = BenchSettings(**{**QUICK, "min_iters": 1000, "max_time": 0.2}, options={"timed": {"delay": 0.01}})
    record = bench(add_relu_model(), ["timed"], settings).results[0]
    assert record.hit_max_time and record.summary.count < 1000


def test_difference_within_noise_is_labelled(fake_registry):
    settings = BenchSettings(**{**QUICK, "min_iters": 30}, options={"timed": {"delay": 0.005}})
    result = bench(add_relu_model(), ["timed", "fake"], settings)
    rows = {r["backend"]: r for r in __import__("hwkit.report.schema", fromlist=["x"]).bench_rows(result.to_dict())}
    assert rows["fake"]["vs_fastest"] == 1.0 and rows["timed"]["vs_fastest"] > 2
    assert not rows["timed"]["within_noise"]


def test_batch_sweep_needs_a_dynamic_batch(fake_registry):
    result = bench(add_relu_model(dynamic=True), ["fake"], BenchSettings(**QUICK, batches=[1, 4]))
    assert [(r.batch, r.outputs["y"].shape) for r in result.results] == [(1, (1, 4)), (4, (4, 4))]
    assert result.mode == "throughput"
    with pytest.raises(OptionError, match="needs a model whose first input has a dynamic leading dimension"):
        bench(add_relu_model(), ["fake"], BenchSettings(**QUICK, batches=[2]))


def test_flops_of_the_builtins_are_what_the_architectures_say():
    from hwkit import Model
    from hwkit.model.flops import count_flops

    mlp = Model.builtin("mlp")
    assert count_flops(mlp, {"x": (1, 784)}) == 2 * (784 * 128 + 128 * 10)
    assert count_flops(mlp, {"x": (8, 784)}) == 8 * 2 * (784 * 128 + 128 * 10)
    cnn = Model.builtin("cnn")
    assert 3.5e9 < count_flops(cnn, {"x": (1, 3, 224, 224)}) < 3.8e9  # ResNet-18: ~1.8 GMAC
    t, h, ff, heads, layers = 128, 256, 1024, 4, 4
    matmuls = 2 * t * h * (3 * h + h + 2 * ff) + 2 * 2 * t * t * h  # projections, FFN; QK^T and PV
    norms = 5 * ((2 * layers + 1) * t * h + layers * heads * t * t)  # LayerNorms and Softmaxes
    assert count_flops(Model.builtin("encoder"), {"input_ids": (1, t)}) == layers * matmuls + norms
