"""hwkit.measure.peak: the CPU peak is the best of every installed matmul kernel, so that no
backend shows above 100% of a yardstick one slow library set (MKL on AMD: 204 against MLAS 447);
one peak per precision, none for a precision the device has no instructions for (row 74)."""

from __future__ import annotations

import json
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest

from hwkit.cli import main
from hwkit.measure import peak, peak_kernels
from hwkit.measure.efficiency import attach_efficiency
from hwkit.measure.records import BackendResult, BenchResult
from hwkit.measure.settings import BenchSettings
from hwkit.model import Model

AMD_ZEN4 = frozenset({"fpu", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"})  # bf16, int8; no fp16


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The peak's child process answers at once: a figure of the precision asked (1 GFLOP/s per
    letter of it), or "lacks" for fp16. Records each command."""
    commands: list[list[str]] = []

    def run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        kind, precision, threads = command[-3:]
        if precision == "fp16":
            return subprocess.CompletedProcess(command, peak.LACKS, "", "no fp16 here\n")
        figure = {"gflops": 100.0 * len(precision), "library": "test", "device": kind, "threads": int(threads),
                  "size": 8, "precision": precision}
        return subprocess.CompletedProcess(command, 0, json.dumps(figure) + "\n", "")

    monkeypatch.setattr(peak, "subprocess", types.SimpleNamespace(run=run, TimeoutExpired=subprocess.TimeoutExpired))
    monkeypatch.setattr(peak_kernels, "cpu_flags", lambda: AMD_ZEN4)
    return commands


def test_the_cpu_peak_is_the_best_of_every_installed_library(monkeypatch):
    monkeypatch.setattr(peak, "SECONDS", 0.05)  # a structure test, not a measurement
    monkeypatch.setattr(peak_kernels, "MATRIX", 128)
    figure = peak._measure("cpu", 1, "fp32")
    assert isinstance(figure, dict) and peak._not_a_figure(json.dumps(figure).encode()) is None
    tried = figure["library"].split("(best of ", 1)[1].rstrip(")").split(", ")
    installed = [name for name, _ in peak_kernels.CPU_KERNELS["fp32"] if peak_kernels.importable(name)]
    assert tried == installed and "numpy" in tried  # numpy is a core dependency: always a candidate
    assert figure["library"].split(" ")[0] in tried and figure["gflops"] > 0 and figure["precision"] == "fp32"


def _expected(precision: str, label: str, x: np.ndarray) -> np.ndarray:
    """What each kernel computes from ``peak_kernels.matrix()``, in float64."""
    if precision != "int8":
        return x.astype(np.float64) @ x
    if label.startswith("torch"):
        a = (np.clip(x, -3, 3) * 40).astype(np.int8).astype(np.float64)
        return a @ a
    a = (np.clip(np.round(x / 0.05) + 128, 0, 255) - 128) * 0.05  # the QDQ matmul graph's arithmetic
    w = np.clip(x * 40, -127, 127).astype(np.int8) * 0.01
    return a @ w


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16", "int8"])
def test_each_kernel_multiplies_the_matrix_it_claims_in_its_precision(monkeypatch, precision):
    monkeypatch.setattr(peak_kernels, "MATRIX", 64)
    x = peak_kernels.matrix()
    ran = 0
    for name, make in peak_kernels.CPU_KERNELS[precision]:
        if not peak_kernels.importable(name) or (kernel := make(1)) is None:
            continue  # not installed, or (OpenVINO's f16 on a CPU without fp16) not really this precision
        run, label = kernel
        out = run()
        if isinstance(out, list):  # onnxruntime: a list of outputs
            product = out[0]
        elif isinstance(out, np.ndarray):  # numpy
            product = out
        elif type(out).__module__.startswith("torch"):
            product = out.float().numpy()
        else:  # openvino: its results by port
            product = next(iter(out.values()))
        expected = _expected(precision, label, x)
        error = np.abs(np.asarray(product, np.float64) - expected).max() / np.abs(expected).max()
        assert error < {"fp32": 1e-5, "bf16": 2e-2, "fp16": 2e-3, "int8": 1e-4}[precision], label
        ran += 1
    assert ran or precision == "fp16", f"no installed library ran {precision}"


def test_cpu_flags_say_which_precisions_have_instructions() -> None:
    assert peak_kernels.cpu_lacks("fp32", frozenset()) is None
    assert peak_kernels.cpu_lacks("bf16", AMD_ZEN4) is None and peak_kernels.cpu_lacks("int8", AMD_ZEN4) is None
    assert peak_kernels.cpu_lacks("fp16", AMD_ZEN4) == ("this CPU has no fp16 matmul instructions "
                                                       "(none of avx512_fp16, amx_fp16, asimdhp)")
    assert peak_kernels.cpu_lacks("int8", frozenset({"asimd", "asimddp"})) is None  # an Arm core with dot products
    assert "cannot tell" in str(peak_kernels.cpu_lacks("bf16", frozenset()))


def _figure(precision: str, threads: int = 1) -> dict[str, object]:
    figure = peak.peak_flops("cpu", precision, threads)
    assert figure is not None, f"no {precision} peak"
    return figure


def test_each_precision_has_its_own_cached_figure(children, cache) -> None:
    assert _figure("bf16", 2)["gflops"] == 400.0
    assert _figure("int8", 2)["gflops"] == 400.0
    assert peak.peak_gflops("cpu", 2)["gflops"] == 400.0 and _figure("fp32", 2)["precision"] == "fp32"
    assert [c[-3:] for c in children] == [["cpu", "bf16", "2"], ["cpu", "int8", "2"], ["cpu", "fp32", "2"]]
    peak.peak_flops("cpu", "bf16", 2)
    assert len(children) == 3 and len(list((cache / "peak").glob("*.json"))) == 3


def test_a_figure_of_another_precision_in_the_cache_is_measured_again(children, cache) -> None:
    peak.peak_flops("cpu", "bf16", 1)
    (entry,) = (cache / "peak").glob("*.json")
    from hwkit._files import write_cached

    write_cached(entry, entry.read_bytes().replace(b'"bf16"', b'"int8"'))
    with pytest.warns(UserWarning, match="a figure of another precision than bf16"):
        assert _figure("bf16")["precision"] == "bf16"
    assert len(children) == 2


def test_an_fp32_figure_without_a_precision_field_is_still_read(children, cache) -> None:
    """Figures that hwkit wrote before the precision axis have no "precision": they are fp32."""
    assert peak._figure_check("fp32")(json.dumps({"gflops": 5.0, "library": "numpy 2", "device": "cpu0",
                                                   "threads": 1, "size": 2048}).encode()) is None
    assert peak._figure_check("int8")(json.dumps({"gflops": 5.0, "library": "numpy 2", "device": "cpu0",
                                                   "threads": 1, "size": 2048}).encode()) is not None


def test_a_precision_the_cpu_lacks_has_no_peak_and_starts_no_child(children, monkeypatch) -> None:
    assert peak.peak_flops("cpu", "fp16", 1) is None
    monkeypatch.setattr(peak_kernels, "cpu_flags", lambda: frozenset({"fpu", "avx2"}))
    assert peak.peak_flops("cpu", "bf16", 1) is None and peak.peak_flops("cpu", "int8", 1) is None
    assert children == []
    assert peak.peak_flops("gpu", "fp16", 1) is None and len(children) == 1  # the GPU's child says it lacks it


def test_row_74_peak_shows_a_dash_for_a_precision_the_device_lacks(children, capsys) -> None:
    assert main(["peak", "--threads", "1", "--precision", "fp16,int8,fp32"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    lacks, int8, fp32 = (out.index(s) for s in ("fp16: – (this CPU has no fp16 matmul instructions",
                                                 "int8: 400.0 GOP/s matmul", "fp32: 400.0 GFLOP/s matmul"))
    assert lacks < int8 < fp32
    with pytest.raises(SystemExit) as exited:
        main(["peak", "--precision", "fp8"])
    assert exited.value.code == 2
    assert "valid precisions: fp32" in capsys.readouterr().err


def _bench_result(precisions: list[str]) -> BenchResult:
    from tests.measure.test_robust_after_measuring import matmul_model

    records = [BackendResult("fake", device="cpu", precision=p, samples=[1e-3] * 3) for p in precisions]  # type: ignore[arg-type]
    settings = BenchSettings(threads=1, isolation=False)
    return BenchResult(Model(matmul_model()), settings, {1: {"x": (1, 4)}}, records)


def test_each_row_gets_the_peak_of_its_own_precision_and_none_without_one(children) -> None:
    result = _bench_result(["fp32", "bf16", "fp16", "int8"])
    attach_efficiency(result)
    assert result.peaks == {"cpu": 400.0, "cpu/bf16": 400.0, "cpu/int8": 400.0}  # no fp16 peak, no fp32 stand-in
    rows = {r["precision"]: r for r in result.to_dict()["results"]}
    assert rows["fp16"]["percent_of_peak"] is None and rows["fp32"]["percent_of_peak"] is not None
    assert rows["int8"]["percent_of_peak"] == rows["bf16"]["percent_of_peak"] == rows["fp32"]["percent_of_peak"]
