"""``hwkit install`` / ``hwkit uninstall``: names mapped to distributions, pip run in hwkit's own
environment. Only --dry-run and a fake pip here: tests never install anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hwkit.cli import main
from hwkit.cli.install_cmd import (
    NO_DEPS_REQUIREMENTS,
    InstallError,
    also_removed,
    distribution,
    pip_command,
    pip_commands,
    project,
)
from hwkit.errors import HwkitError

ROOT = Path(__file__).resolve().parents[2]
TF_EXTRAS = list(NO_DEPS_REQUIREMENTS["hwkit-tensorflow"])


@pytest.mark.parametrize(("name", "expected"), [
    ("onnxruntime", "hwkit-onnxruntime"),
    ("openvino==0.2", "hwkit-openvino==0.2"),
    ("openvino[extra]", "hwkit-openvino[extra]"),
    ("cpu", "hwkit-torch"),  # cpu and cuda both come from hwkit-torch
    ("cuda", "hwkit-torch"),
    ("CUDA", "hwkit-torch"),
    ("cuda[extra]", "hwkit-torch[extra]"),
    ("cpu>=0.1", "hwkit-torch>=0.1"),
    ("tensorflow", "hwkit-tensorflow"),  # tensorflow and litert both come from hwkit-tensorflow
    ("litert", "hwkit-tensorflow"),
    ("LiteRT==0.2", "hwkit-tensorflow==0.2"),
    ("hwkit-torch", "hwkit-torch"),
    ("hwkit-example-plugin", "hwkit-example-plugin"),
    ("./plugins/hwkit-openvino", "./plugins/hwkit-openvino"),
    ("dist/hwkit_x-0.1-py3-none-any.whl", "dist/hwkit_x-0.1-py3-none-any.whl"),
    ("git+https://example.org/x.git", "git+https://example.org/x.git"),
])
def test_names_map_to_distributions(name: str, expected: str) -> None:
    assert distribution(name) == expected


def test_pip_runs_in_hwkits_environment() -> None:
    assert pip_command("install", ["openvino"], upgrade=True) == [
        sys.executable, "-m", "pip", "install", "--upgrade", "hwkit-openvino"]
    assert pip_command("uninstall", ["openvino"]) == [sys.executable, "-m", "pip", "uninstall", "--yes", "hwkit-openvino"]


def test_backends_sharing_a_distribution_install_it_once() -> None:
    assert pip_command("install", ["cpu", "cuda", "onnxruntime"]) == [
        sys.executable, "-m", "pip", "install", "hwkit-torch", "hwkit-onnxruntime"]


def test_uninstalling_one_torch_backend_says_the_other_goes_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert also_removed(["cpu"]) == ["cuda"]
    assert also_removed(["cpu", "cuda"]) == []
    assert also_removed(["hwkit-torch"]) == ["cpu", "cuda"]
    assert also_removed(["openvino"]) == []
    assert main(["uninstall", "cuda", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "-m pip uninstall --yes hwkit-torch" in captured.out
    assert "also removes backend(s) cpu" in captured.err


def test_dry_run_prints_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "onnxruntime", "cuda", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{sys.executable} -m pip install hwkit-onnxruntime hwkit-torch" in out
    assert main(["uninstall", "openvino", "--dry-run"]) == 0
    assert "-m pip uninstall --yes hwkit-openvino" in capsys.readouterr().out


def test_pip_failure_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def fake_pip(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, stderr="WARNING: x\nERROR: No matching distribution found for hwkit-nope\n")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    assert issubclass(InstallError, HwkitError)
    assert main(["install", "nope"]) == 2
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if ln.startswith("hwkit: error:"))
    assert "pip install hwkit-nope failed (exit code 1): ERROR: No matching distribution found for hwkit-nope" in line


def test_success_names_what_was_installed(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[list[str]] = []

    def fake_pip(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, stderr="")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    assert main(["uninstall", "openvino"]) == 0
    assert calls == [[sys.executable, "-m", "pip", "uninstall", "--yes", "hwkit-openvino"]]
    assert "uninstalled hwkit-openvino" in capsys.readouterr().err


def test_a_name_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["install"])
    assert caught.value.code == 2


# -- distributions that need packages installed without their dependencies (hwkit-tensorflow) --

def test_make_setup_installs_the_same_no_deps_pins_as_hwkit_install() -> None:
    lines = (ROOT / "requirements-nodeps.txt").read_text().splitlines()
    pinned = [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]
    assert sorted(pinned) == sorted(r for reqs in NO_DEPS_REQUIREMENTS.values() for r in reqs)
    assert all("==" in r for r in pinned)  # exact pins: their metadata is not consulted


@pytest.mark.parametrize(("requirement", "expected"), [
    ("hwkit-tensorflow==0.2", "hwkit-tensorflow"),
    ("hwkit_TensorFlow[x]", "hwkit-tensorflow"),
    ("./plugins/hwkit-tensorflow/", "hwkit-tensorflow"),
    ("dist/hwkit_tensorflow-0.1.0-py3-none-any.whl", "hwkit-tensorflow"),
    ("git+https://example.org/x.git", "x"),
    ("git+https://example.org/hwkit-tensorflow.git@main", "hwkit-tensorflow"),
])
def test_project_names_what_a_requirement_installs(requirement: str, expected: str) -> None:
    assert project(requirement) == expected


def test_installing_tensorflow_runs_a_second_pip_without_dependencies() -> None:
    plugin = [sys.executable, "-m", "pip", "install", "hwkit-tensorflow", "hwkit-onnxruntime"]
    no_deps = [sys.executable, "-m", "pip", "install", "--no-deps", *TF_EXTRAS]
    assert pip_commands("install", ["tensorflow", "litert", "onnxruntime"]) == [plugin, no_deps]
    assert pip_commands("install", ["./plugins/hwkit-tensorflow"])[1] == no_deps
    assert pip_commands("install", ["onnxruntime"]) == [[*plugin[:4], "hwkit-onnxruntime"]]
    assert pip_commands("uninstall", ["litert"]) == [[sys.executable, "-m", "pip", "uninstall", "--yes", "hwkit-tensorflow"]]


def test_dry_run_prints_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "litert", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{sys.executable} -m pip install hwkit-tensorflow",
                   f"{sys.executable} -m pip install --no-deps {' '.join(TF_EXTRAS)}"]


def test_uninstall_says_what_it_leaves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["uninstall", "tensorflow", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{sys.executable} -m pip uninstall --yes hwkit-tensorflow"
    assert "also removes backend(s) litert" in captured.err
    assert "leaves onnx2tf, tf-keras (installed with it" in captured.err
    assert "'pip uninstall onnx2tf tf-keras' removes them" in captured.err


def test_install_runs_both_commands_in_order(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[list[str]] = []

    def fake_pip(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, stderr="")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    assert main(["install", "tensorflow"]) == 0
    assert calls == pip_commands("install", ["tensorflow"])
    assert "installed hwkit-tensorflow" in capsys.readouterr().err


def test_row_112_no_deps_step_fails_after_the_plugin_installed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def fake_pip(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        failed = "--no-deps" in command
        return subprocess.CompletedProcess(command, int(failed), stderr="ERROR: No matching distribution found for onnx2tf==1.29.24\n" if failed else "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    assert main(["install", "litert"]) == 2
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if ln.startswith("hwkit: error:"))
    assert (f"pip install --no-deps {' '.join(TF_EXTRAS)} failed (exit code 1): ERROR: No matching distribution "
            "found for onnx2tf==1.29.24; hwkit-tensorflow installed, but its backends stay unavailable until "
            "these are: run 'hwkit install litert' again") in line
