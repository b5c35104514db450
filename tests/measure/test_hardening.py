"""Hardening, second round, in the engine: a backend whose outputs are not the model's declared
outputs fails its row with a ``BackendOutputError`` that names the difference (checked once, on
the first run, outside the clock), and a median gets no 95% interval from fewer samples than
such an interval needs (``MIN_CI_SAMPLES``), in the statistics and in every view of a result.

The test backends here are also used by tests/cli/test_hardening_cli.py (``HardeningPlugin``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

import hwkit
from hwkit import Backend, BackendOptions, Device, Executable, Model
from hwkit.errors import BackendOutputError, CompileError, ExecutionError
from hwkit.measure.stats import (
    EXACT_BELOW,
    MIN_CI_SAMPLES,
    order_statistic_half_width,
    order_statistic_ranks,
    summarize,
)
from hwkit.model.specs import TensorSpec, check_outputs
from hwkit.report import diff, files, plot, tables
from hwkit.report.schema import validation_errors
from hwkit.testing.backends import FakeExecutable
from tests.helpers import add_relu_model

# -- backends whose outputs are wrong in one way each --------------------------------------------

# mode -> (what execute returns instead of the right outputs {"y": float32[batch, 4]}, what the error says)
WRONG: dict[str, tuple[Callable[[dict[str, np.ndarray]], Any], str]] = {
    "missing": (lambda o: {}, "missing output 'y'"),
    "extra": (lambda o: {**o, "z": o["y"]}, "extra output 'z'"),
    "renamed": (lambda o: {"Y": o["y"]}, "missing output 'y'; extra output 'Y'"),
    "dtype": (lambda o: {"y": o["y"].astype(np.float64)}, "output 'y' as float64, the model declares float32"),
    "int": (lambda o: {"y": o["y"].astype(np.int64)}, "output 'y' as int64, the model declares float32"),
    "rank": (lambda o: {"y": o["y"][None]}, "output 'y' with shape (1, 2, 4), the model declares [batch, 4]"),
    "flat": (lambda o: {"y": o["y"].ravel()}, "output 'y' with shape (8,), the model declares [batch, 4]"),
    "static": (lambda o: {"y": o["y"][:, :3]}, "output 'y' with shape (2, 3), the model declares [batch, 4]"),
    "batch": (lambda o: {"y": np.concatenate([o["y"], o["y"]])},
              "output 'y' with shape (4, 4), the model declares [batch, 4] (batch=2 in the inputs)"),
    "list": (lambda o: {"y": o["y"].tolist()}, "output 'y' as a list, not a numpy array"),
    "sequence": (lambda o: {"y": [o["y"]]}, "output 'y' as a list, not a numpy array"),
    "none": (lambda o: {"y": None}, "output 'y' as None, not a numpy array"),
    "scalar": (lambda o: {"y": np.float32(1.0)}, "output 'y' as a numpy.float32, not a numpy array"),
    "tuple": (lambda o: (o["y"],), "returned a tuple, not a dict of outputs by name"),
    "nothing": (lambda o: None, "returned None, not a dict of outputs by name"),
}


@dataclasses.dataclass(frozen=True)
class WrongOptions(BackendOptions):
    mode: str = "ok"  # a key of WRONG; "ok" returns the right outputs
    stop: str = ""  # a signal name ("SIGTERM", "SIGHUP") this process sends itself on the first run


class WrongExecutable(FakeExecutable):
    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import os
        import signal

        options: WrongOptions = self.options  # type: ignore[assignment]
        if options.stop and not self.calls:
            os.kill(os.getpid(), signal.Signals[options.stop])  # as a service manager or a hang-up would
        outputs = super().execute(inputs)
        return outputs if options.mode == "ok" else WRONG[options.mode][0](outputs)


class WrongBackend(Backend[WrongOptions]):
    name = "wrong"
    Options = WrongOptions

    def devices(self) -> list[Device]:
        return [Device("cpu", "cpu", "returns what it is told to")]

    def compile(self, model: Model, device: Device, options: WrongOptions) -> Executable:
        return WrongExecutable(model, device, options)


class CompileFailsBackend(WrongBackend):
    """Fails to compile with a message that names itself first, as the torch converter's do."""

    name = "nocompile"

    def compile(self, model: Model, device: Device, options: WrongOptions) -> Executable:
        raise CompileError("nocompile: node 'relu' (Relu) cannot be converted: no kernel for float32")


class CrashingCompileBackend(WrongBackend):
    """A plugin bug while compiling: ``api.compile_with`` maps it to a CompileError."""

    name = "buggy"

    def compile(self, model: Model, device: Device, options: WrongOptions) -> Executable:
        raise KeyError("relu")


class HardeningPlugin:
    @hwkit.hookimpl
    def hwkit_register_backends(self) -> list[type[Backend]]:
        return [WrongBackend, CompileFailsBackend, CrashingCompileBackend]


@pytest.fixture
def wrong_registry(fake_registry):
    fake_registry.register(HardeningPlugin(), "hardening")
    return fake_registry


@pytest.fixture
def relu() -> Model:
    return Model.load(add_relu_model(dynamic=True))


FAST: dict[str, Any] = {"min_time": 0.01, "min_iters": 3, "warmup_iters": 0, "warmup_time": 0.0, "max_time": 2.0,
                        "isolation": False, "efficiency": False, "target_ci": None, "dims": {"batch": 2}}


# -- 1: outputs that do not match the model -------------------------------------------------------

@pytest.mark.parametrize("mode", sorted(WRONG))
def test_row_22_bench_fails_a_backend_whose_outputs_are_not_the_models(wrong_registry, relu, mode):
    result = hwkit.bench(relu, ["wrong", "fake"], options={"wrong": {"mode": mode}}, **FAST)
    rows = {r.backend: r for r in result.results}
    wrong = rows["wrong"]
    assert wrong.status == "failed" and wrong.error_type == "BackendOutputError", wrong.error
    assert wrong.error.startswith("backend 'wrong' returned ")
    assert WRONG[mode][1] in wrong.error, wrong.error
    assert "report it to the plugin's authors" in wrong.error and "\n" not in wrong.error
    # No latency for a row whose outputs are wrong, no parity against them; the first run is timed.
    assert not wrong.samples and wrong.outputs is None and wrong.agreement is None and wrong.first_run_s is not None
    assert rows["fake"].ok  # the other backend goes on
    data = result.to_dict()
    (record,) = [r for r in data["results"] if r["backend"] == "wrong"]
    assert record["latency_s"] is None and record["parity"] is None and record["status"] == "failed"


def test_row_22_a_backend_with_the_right_outputs_passes_the_check(wrong_registry, relu):
    result = hwkit.bench(relu, ["wrong", "fake"], **FAST)
    assert all(r.ok for r in result.results) and all(r.parity_passed for r in result.results)


def test_row_22_the_error_is_an_execution_error_and_crosses_processes():
    import pickle

    error = BackendOutputError("backend 'x' returned outputs that do not match the model's: missing output 'y'")
    assert isinstance(error, ExecutionError) and isinstance(error, hwkit.HwkitError)
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    assert "BackendOutputError" in hwkit.__all__ and hwkit.BackendOutputError is BackendOutputError


SEQ = TensorSpec("s", "float32", (2,), "sequence")
OPT = TensorSpec("o", "int64", ("n",), "optional")
OPT_SEQ = TensorSpec("q", "float16", None, "optional_sequence")
ANY = TensorSpec("a", "bool", None)
X = TensorSpec("x", "float32", ("n", 3))


@pytest.mark.parametrize("outputs", [
    {"s": [], "o": None, "q": None, "a": np.zeros((), bool)},
    {"s": [np.zeros(2, np.float32)] * 3, "o": np.zeros(5, np.int64), "q": [np.zeros((7, 1), np.float16)],
     "a": np.zeros((2, 9, 9), bool)},
    {"s": (np.zeros(2, np.float32),), "o": np.zeros(5, np.int64), "q": [], "a": np.ones(1, bool)},
])
def test_sequences_and_optionals_that_match_pass(outputs):
    check_outputs([SEQ, OPT, OPT_SEQ, ANY], outputs, "b", [X], {"x": np.zeros((5, 3), np.float32)})


@pytest.mark.parametrize("change, expected", [
    ({"s": np.zeros(2, np.float32)}, "output 's' as a numpy.ndarray, the model declares a sequence (a list of arrays)"),
    ({"s": None}, "output 's' as None, the model declares a sequence"),
    ({"s": [np.zeros(2, np.float32), np.zeros(2, np.float64)]}, "element 1 of output 's' as float64, the model declares float32"),
    ({"s": [np.zeros(3, np.float32)]}, "element 0 of output 's' with shape (3,), the model declares [2]"),
    ({"s": [[1.0, 2.0]]}, "element 0 of output 's' as a list, not a numpy array"),
    ({"o": [np.zeros(5, np.int64)]}, "output 'o' as a list, not a numpy array"),
    ({"o": np.zeros(4, np.int64)}, "output 'o' with shape (4,), the model declares [n] (n=5 in the inputs)"),
    ({"o": np.zeros(5, np.int32)}, "output 'o' as int32, the model declares int64"),
    ({"q": np.zeros(1, np.float16)}, "output 'q' as a numpy.ndarray, the model declares a sequence"),
    ({"q": [np.zeros(1, np.float32)]}, "element 0 of output 'q' as float32, the model declares float16"),
    ({"a": np.zeros(3, np.uint8)}, "output 'a' as uint8, the model declares bool"),
    ({"a": None}, "output 'a' as None, not a numpy array"),
])
def test_sequences_and_optionals_that_do_not_match_are_named(change, expected):
    outputs = {"s": [], "o": None, "q": None, "a": np.zeros((), bool), **change}
    with pytest.raises(BackendOutputError) as caught:
        check_outputs([SEQ, OPT, OPT_SEQ, ANY], outputs, "b", [X], {"x": np.zeros((5, 3), np.float32)})
    assert expected in str(caught.value) and str(caught.value).startswith("backend 'b' returned outputs")


def test_every_difference_is_named_at_once_up_to_five():
    specs = [TensorSpec(f"y{i}", "float32", (1,)) for i in range(8)]
    with pytest.raises(BackendOutputError) as caught:
        check_outputs(specs, {f"y{i}": np.zeros(1, np.float64) for i in range(8)}, "b")
    message = str(caught.value)
    assert message.count("as float64") == 5 and "; +3 more" in message and "\n" not in message


def test_a_symbolic_dimension_the_inputs_do_not_fix_may_take_any_size():
    spec = TensorSpec("y", "float32", ("m", 4))
    check_outputs([spec], {"y": np.zeros((7, 4), np.float32)}, "b", [X], {"x": np.zeros((5, 3), np.float32)})


# -- 10b: no CI from too few samples --------------------------------------------------------------

@pytest.mark.parametrize("n", range(1, MIN_CI_SAMPLES))
def test_row_24_too_few_samples_have_no_interval(n):
    s = summarize([0.010 + 0.001 * i for i in range(n)])
    assert s.count == n and s.median > 0
    assert s.ci_low is None and s.ci_high is None and s.ci_half_width is None
    assert not s.overlaps(s)  # without an interval nothing says a difference is noise
    assert order_statistic_ranks(n) is None and order_statistic_half_width([0.01] * n) == float("inf")


def test_row_24_six_samples_give_min_to_max():
    samples = [0.013, 0.010, 0.012, 0.011, 0.015, 0.014]
    s = summarize(samples)
    assert (s.ci_low, s.ci_high) == (min(samples), max(samples)) and s.ci_half_width is not None


@pytest.mark.parametrize("n", [MIN_CI_SAMPLES, 7, 9, 12, 20, EXACT_BELOW - 1])
def test_row_24_small_sample_intervals_cover_the_median_at_least_95_percent(n):
    """Exact binomial ranks: coverage >= 95% for any continuous distribution (the bootstrap
    under-covers here); the rank choice itself is checked, and the coverage on known draws."""
    from math import comb

    lo, hi = order_statistic_ranks(n) or (-1, -1)
    assert hi == n - 1 - lo
    miss = sum(comb(n, j) for j in range(lo + 1)) / 2**n  # P(median below the lower rank)
    assert 1 - 2 * miss >= 0.95 and 1 - 2 * (miss + comb(n, lo + 1) / 2**n) < 0.95  # the narrowest such ranks
    rng = np.random.default_rng(n)
    covered = np.mean([(s := summarize(rng.lognormal(0.0, 0.5, n))).ci_low <= 1.0 <= s.ci_high for _ in range(600)])
    assert covered >= 0.93, covered


def test_row_24_a_target_ci_keeps_timing_until_an_interval_exists(fake_registry, relu):
    result = hwkit.bench(relu, ["timed"], **{**FAST, "min_iters": 2, "target_ci": 0.5},
                         options={"timed": {"delay": 0.0005}})
    (record,) = result.results
    assert len(record.samples) >= MIN_CI_SAMPLES and record.summary and record.summary.ci_half_width is not None


def test_row_24_every_view_of_a_result_without_a_ci(fake_registry, relu, tmp_path):
    result = hwkit.bench(relu, ["timed", "fake"], **{**FAST, "min_iters": 3, "min_time": 0.0},
                         options={"timed": {"delay": 0.002}})
    data = json.loads(result.to_json())
    assert validation_errors(data) == []  # null bounds are part of hwkit.bench/2
    for record in data["results"]:
        assert record["latency_s"]["count"] == 3
        assert record["latency_s"]["ci_low"] is None and record["latency_s"]["ci_high"] is None
        assert record["ci_half_width"] is None and record["within_noise"] is False
    caption = tables.bench_table(data).caption
    assert "±CI -: 3 runs are too few for a 95% interval of the median" in str(caption)
    assert f"needs {MIN_CI_SAMPLES} at least" in str(caption)  # report/ states the rule of measure/stats
    assert "2 of 2 without a CI: too few runs" in tables.run_summary(data)
    csv = files.bench_csv(data).splitlines()
    header = csv[0].split(",")
    for line in csv[1:]:
        cells = dict(zip(header, line.split(",")))
        assert cells["ci_low_s"] == cells["ci_high_s"] == "" and cells["runs"] == "3"
    assert files.bench_markdown(data).count("none: 3 runs are too few") == 2
    changes, _, _ = diff.compare_results(data, data)
    assert changes and not any(c.within_noise for c in changes)  # nothing says it is noise
    assert plot.bench_png(data).startswith(b"\x89PNG")
