"""What the library says to a caller who passes the wrong thing (errors.md rows 43-44): inputs
that are not a mapping, arrays any runtime must take (negative strides), and a Device that belongs
to another backend; and a plugin's sys.exit() while compiling or running is a hwkit error."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

import hwkit
from hwkit.testing import require_backend
from hwkit import Backend, Device, Executable
from hwkit.errors import BackendUnavailableError, CompileError, ExecutionError, ModelError
from tests.helpers import add_relu_model


@pytest.fixture
def relu() -> hwkit.Model:
    return hwkit.Model.load(add_relu_model())


@pytest.mark.parametrize("given", [[np.zeros((2, 4), np.float32)], None, "x", np.zeros((2, 4), np.float32)],
                         ids=["list", "None", "str", "bare array"])
def test_row_43_run_takes_a_mapping_of_input_names_to_arrays(fake_registry, relu: hwkit.Model, given: object) -> None:
    with hwkit.compile(relu, "fake") as exe:
        with pytest.raises(ModelError, match=r"inputs must be a mapping of input name -> array, got \w+; e\.g\. \{'x': array\}"):
            exe.run(given)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["cpu", "onnxruntime"])
def test_row_43_a_negatively_strided_array_is_taken_by_every_backend(backend: str) -> None:
    require_backend(backend)
    wide = np.arange(16, dtype=np.float32).reshape(2, 8) - 8
    x = wide[:, ::-2]  # negative strides, not contiguous
    expected = np.maximum(x + np.array([0.5, -0.5, 1.0, -1.0], np.float32), 0)
    with hwkit.compile(add_relu_model().SerializeToString(), backend) as exe:
        np.testing.assert_allclose(exe.run({"x": x})["y"], expected)
    assert not x.flags.c_contiguous  # the caller's array is left as it was


def test_row_44_another_backends_device_names_the_valid_ones(fake_registry, relu: hwkit.Model) -> None:
    foreign = Device("GPU.1", "gpu", "another backend's device")
    with pytest.raises(BackendUnavailableError, match=r"backend 'fake' has no device 'GPU.1' .*its devices: cpu"):
        hwkit.compile(relu, "fake", device=foreign)
    with pytest.raises(BackendUnavailableError, match=r"device must be a name or a hwkit.Device, got int"):
        hwkit.compile(relu, "fake", device=3)  # type: ignore[arg-type]


def test_row_44_onnxruntime_with_a_foreign_device_is_a_hwkit_error() -> None:
    require_backend("onnxruntime")
    foreign = Device("GPU.1", "gpu", "openvino's")
    with pytest.raises(BackendUnavailableError, match=r"backend 'onnxruntime' has no device 'GPU.1'"):
        hwkit.compile(add_relu_model().SerializeToString(), "onnxruntime", device=foreign)
    runtime = next(b for b in hwkit.backends() if b.name == "onnxruntime").runtime  # past the API's check
    with pytest.raises(BackendUnavailableError, match=r"onnxruntime has no device 'GPU.1'; its devices: "):
        runtime.compile(hwkit.Model.load(add_relu_model()), foreign, runtime.Options())


class _ExitingExecutable(Executable):
    def execute(self, inputs):  # type: ignore[no-untyped-def]
        sys.exit(0)


class _ExitingBackend(Backend):
    name = "exiting"
    when = "run"

    def devices(self) -> list[Device]:
        return [Device("cpu", "cpu", "test")]

    def compile(self, model, device, options):  # type: ignore[no-untyped-def]
        if self.when == "compile":
            sys.exit(0)
        return _ExitingExecutable(model, device, options)


class _CompileExitingBackend(_ExitingBackend):
    name = "exiting-compile"
    when = "compile"


@pytest.fixture
def exiting(fake_registry):  # type: ignore[no-untyped-def]
    fake_registry.register(SimpleNamespace(hwkit_register_backends=hwkit.hookimpl(
        lambda: [_ExitingBackend, _CompileExitingBackend])), "exiting")
    return fake_registry


def test_row_41_a_plugins_sys_exit_in_the_library_is_a_hwkit_error(exiting, relu: hwkit.Model) -> None:
    with pytest.raises(CompileError, match=r"backend 'exiting-compile' failed to compile '\w+': SystemExit \(the plugin called sys.exit\(0\)\)"):
        hwkit.compile(relu, "exiting-compile")
    with hwkit.compile(relu, "exiting") as exe:
        with pytest.raises(ExecutionError, match=r"_ExitingExecutable.execute called sys.exit\(0\)"):
            exe.run({"x": np.zeros((2, 4), np.float32)})


def test_row_40_a_plugin_registered_here_that_cannot_reach_the_child_says_to_run_in_process(exiting, relu) -> None:
    report = hwkit.check(relu, ["fake", "exiting"], reference="fake", seeds=1)  # isolated by default
    (row,) = report.results
    assert row.status == "failed" and "plugin 'exiting' was registered in the calling process" in row.error
    assert row.error.endswith("run without isolation (isolation=False, --no-isolation)")
    inline = hwkit.check(relu, ["fake", "exiting"], reference="fake", seeds=1, isolation=False)
    assert "called sys.exit(0)" in inline.results[0].error  # in this process it runs, and its exit is its failure
