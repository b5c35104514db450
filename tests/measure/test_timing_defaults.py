"""BackendOptions.timing_defaults: the values a bench gives options its user left unset, what the
records say the backend ran with (as the backend settled them), and where they are shown."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import pytest

import hwkit
from hwkit import BackendOptions, Device, Executable, Model
from hwkit.measure.bench import BenchSettings, bench
from hwkit.report.files import bench_csv, bench_markdown
from hwkit.report.tables import bench_table
from hwkit.testing.backends import FakeBackend, FakeExecutable
from tests.helpers import add_relu_model

QUICK = dict(warmup_iters=1, warmup_time=0.0, min_iters=3, min_time=0.0, isolation=False, efficiency=False,
             target_ci=None)


@dataclasses.dataclass(frozen=True)
class SettlingOptions(BackendOptions):
    mode: Literal["plain", "tuned", "auto"] = "plain"
    timing_defaults: ClassVar[Mapping[str, Any]] = {"mode": "auto"}


class SettlingExecutable(FakeExecutable):
    """Settles mode=auto to "tuned" on its first run, as the cpu backend's compile=auto does."""

    def execute(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        if self.options.mode == "auto":  # type: ignore[attr-defined]
            self.options = dataclasses.replace(self.options, mode="tuned")
        return super().execute(inputs)


class SettlingBackend(FakeBackend):
    name = "settling"
    Options = SettlingOptions

    def compile(self, model: Model, device: Device, options: BackendOptions) -> Executable:
        return SettlingExecutable(model, device, options)  # type: ignore[arg-type]


class _Plugin:
    @staticmethod
    @hwkit.hookimpl
    def hwkit_register_backends() -> list[type]:
        return [SettlingBackend]


@pytest.fixture
def settling(fake_registry):
    fake_registry.register(_Plugin, "settling-test-backend")
    return fake_registry


def test_timed_fills_only_what_the_user_left_unset():
    options = SettlingOptions()
    assert options.timed({}).mode == "auto"
    assert options.timed({"mode": "plain"}) is options
    assert BackendOptions().timed({}) == BackendOptions()  # no timing defaults: unchanged


def test_describe_names_the_bench_value_beside_the_default():
    described = SettlingOptions.describe()
    assert described["mode"].endswith("(default: 'plain'; bench: 'auto')")
    assert described["threads"].endswith("(default: None)")


def test_a_bench_record_shows_the_value_the_backend_settled_on(settling):
    result = bench(add_relu_model(), ["settling"], BenchSettings(**QUICK))
    (record,) = result.results
    assert record.ok
    assert record.options["mode"] == "tuned" and record.timed_options == {"mode": "tuned"}
    data = result.to_dict()
    assert data["results"][0]["timed_options"] == {"mode": "tuned"}
    assert "settling (mode=tuned)" in bench_markdown(data)
    assert bench_csv(data).splitlines()[1].endswith(",mode=tuned")
    cells = [str(c) for c in bench_table(data).columns[0].cells]
    assert cells == ["settling [dim]mode=tuned[/dim]"]


def test_what_the_user_set_wins_and_is_not_labelled(settling):
    settings = BenchSettings(**QUICK, options={"settling": {"mode": "plain"}})
    data = bench(add_relu_model(), ["settling"], settings).to_dict()
    result = data["results"][0]
    assert result["options"]["mode"] == "plain" and result["timed_options"] is None
    assert "settling (" not in bench_markdown(data)


def test_outside_a_bench_the_options_keep_their_defaults(settling):
    with hwkit.compile(add_relu_model(), "settling") as exe:
        assert exe.options.mode == "plain"
