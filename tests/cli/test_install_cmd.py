"""``hwkit install`` / ``hwkit uninstall``: names mapped to distributions, pip run in hwkit's own
environment. Only --dry-run and a fake pip here: tests never install anything."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hwkit.cli import main
from hwkit.cli.install_cmd import InstallError, also_removed, distribution, pip_command
from hwkit.errors import HwkitError


@pytest.mark.parametrize(("name", "expected"), [
    ("onnxruntime", "hwkit-onnxruntime"),
    ("openvino==0.2", "hwkit-openvino==0.2"),
    ("openvino[extra]", "hwkit-openvino[extra]"),
    ("cpu", "hwkit-torch"),  # cpu and cuda both come from hwkit-torch
    ("cuda", "hwkit-torch"),
    ("CUDA", "hwkit-torch"),
    ("cuda[extra]", "hwkit-torch[extra]"),
    ("cpu>=0.1", "hwkit-torch>=0.1"),
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
