"""Hardening, third round: nothing that goes wrong after every backend was measured costs the
table or the files (a broken peak cache, a plugin's odd outputs, a step that raises: a row or one
warning), every external string prints literally (never as rich markup), and a 0-item batch is
refused before anything runs."""

from __future__ import annotations

import json
import subprocess
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from rich.console import Console

import hwkit
from hwkit.cli import main
from hwkit.errors import OptionError
from hwkit.measure import bench as bench_module
from hwkit.measure import peak
from hwkit.report import tables
from hwkit.report.diff import compare_results
from hwkit.report.schema import load_result
from tests.helpers import add_relu_model, cli
from tests.measure.test_hardening import HardeningPlugin

FAST = ["--min-time", "0.01", "--min-iters", "3", "--warmup", "0", "--warmup-time", "0", "--target-ci", "0",
        "--no-isolation"]
MARKUP = "[/]"  # rich raises MarkupError on a closing tag with nothing open


def matmul_model(x: str = "x", y: str = "y") -> onnx.ModelProto:
    """y = x @ w: FLOPs to count, so the efficiency step (and the peak cache) runs."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", [x, "w"], [y], name="mm")], "mm",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 4], np.eye(4, dtype=np.float32).ravel().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model




@pytest.fixture
def mm(tmp_path: Path) -> str:
    path = tmp_path / "mm.onnx"
    onnx.save(matmul_model(), path)
    return str(path)


@pytest.fixture
def quick_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    """The peak's child process answers at once with a figure (a structure test, not a measurement)."""
    def run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        figure = {"gflops": 1e6, "library": "test", "device": "cpu", "threads": int(command[-1]), "size": peak.MATRIX}
        return subprocess.CompletedProcess(command, 0, json.dumps(figure) + "\n", "")

    monkeypatch.setattr(peak, "subprocess", types.SimpleNamespace(run=run, TimeoutExpired=subprocess.TimeoutExpired))


# -- a broken peak cache heals itself, end to end -------------------------------------------------

def _break_cache(cache: Path, how: str) -> None:
    figures = sorted((cache / "peak").glob("*.json"))
    assert figures, "the first bench cached no peak"
    for figure in figures:
        if how == "read-only":
            figure.chmod(0o444)
            (cache / "peak").chmod(0o555)
        elif how == "not-a-folder":
            for entry in (cache / "peak").iterdir():
                entry.unlink()
            (cache / "peak").rmdir()
            (cache / "peak").write_text("a file where the cache folder was")
            return
        else:
            figure.write_bytes({"corrupt": b"\x00\xff{not json", "empty": b"", "odd": b'[1, 2, {"gflops": "x"}]',
                                "negative": b'{"gflops": -1}'}[how])


@pytest.mark.parametrize("how", ["corrupt", "empty", "odd", "negative", "read-only", "not-a-folder"])
def test_row_49_a_broken_peak_cache_costs_neither_table_nor_json(capsys, fake_registry, mm, tmp_path, monkeypatch,
                                                                  quick_peak, how):
    cache = tmp_path / "cache"
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(cache))
    assert cli(capsys, "bench", mm, "-b", "fake", "--dim", "batch=2", *FAST)[0] == 0
    _break_cache(cache, how)
    try:
        out_json = tmp_path / "r.json"
        code, out, err = cli(capsys, "bench", mm, "-b", "fake", "--dim", "batch=2", *FAST, "--json", str(out_json))
    finally:
        if (cache / "peak").is_dir():
            (cache / "peak").chmod(0o755)
    assert code == 0, err
    assert "Traceback" not in out + "".join(err)
    assert "hwkit bench: mm" in out and "% peak" in out
    data = json.loads(out_json.read_text())
    assert data["results"][0]["status"] == "ok" and data["peaks_gflops"]["cpu"] > 0


@pytest.mark.parametrize("mode", ["nothing", "tuple", "list", "none", "scalar"])
def test_row_49_execute_returning_no_dict_of_arrays_is_a_row_not_a_traceback(capsys, fake_registry, tmp_path, mode):
    fake_registry.register(HardeningPlugin(), "hardening")
    model = tmp_path / "relu.onnx"
    onnx.save(add_relu_model(dynamic=True), model)
    out_json = tmp_path / "r.json"
    code, out, err = cli(capsys, "bench", str(model), "-b", "fake,wrong", "-o", f"wrong.mode={mode}",
                         "--dim", "batch=2", *FAST, "--json", str(out_json))
    assert code == 2
    rows = {r["backend"]: r for r in json.loads(out_json.read_text())["results"]}
    assert rows["fake"]["status"] == "ok" and rows["wrong"]["status"] == "failed"
    assert "hwkit bench: relu" in out and "Traceback" not in "".join(err)
    assert [line for line in err if line.startswith("hwkit: error:")] == [
        f"hwkit: error: {rows['wrong']['error']}"]


@pytest.mark.parametrize("step", ["attach_agreement", "attach_efficiency"])
def test_row_49_a_step_after_measuring_that_raises_is_one_warning(capsys, fake_registry, mm, tmp_path, monkeypatch,
                                                                  quick_peak, step):
    def broken(result: object) -> None:
        raise RuntimeError("a plugin's odd outputs\nover two lines")

    monkeypatch.setenv("HWKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(bench_module, step, broken)
    out_json = tmp_path / "r.json"
    code, out, err = cli(capsys, "bench", mm, "-b", "fake", "--dim", "batch=2", *FAST, "--json", str(out_json))
    assert code == 0
    assert "hwkit bench: mm" in out
    assert json.loads(out_json.read_text())["results"][0]["status"] == "ok"
    warned = [line for line in err if line.startswith("hwkit: warning:")]
    assert len(warned) == 1 and "RuntimeError: a plugin's odd outputs over two lines" in warned[0], err


# -- external strings print literally ------------------------------------------------------------

def _text(renderable: object) -> str:
    console = Console(width=400, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize("name", ["[/]", "[red]", "[bold]x", "a[/b]"])
def test_markup_in_names_and_errors_prints_literally(capsys, fake_registry, tmp_path, name):
    """A model, an input, an output and an error that read as rich markup: every table, caption
    and stderr line shows them as they are (rich would raise MarkupError or eat them)."""
    fake_registry.register(HardeningPlugin(), "hardening")
    stem = f"m[bold]{name.replace('/', '')}"  # a file name cannot hold "/"
    model = tmp_path / f"{stem}.onnx"
    onnx.save(matmul_model(x=f"x{name}", y=f"y{name}"), model)
    out_json, markdown = tmp_path / "r.json", tmp_path / "r.md"
    code, out, err = cli(capsys, "bench", str(model), "-b", "fake,nocompile", "--dim", "batch=2", *FAST,
                         "--json", str(out_json), "--markdown", str(markdown), "-o", "fake.scale=2")
    assert code == 2, err
    assert f"hwkit bench: {stem}" in out and f"x{name}=2x4" in out
    assert "Traceback" not in "".join(err)
    data = load_result(out_json)
    bench_text = _text(tables.bench_table(data))
    assert stem in bench_text
    # the same result with markup in the backend's name, device, error and the reference
    for r in data["results"]:
        r["backend"], r["device"] = f"b{name}{r['backend']}", f"d{name}"
        r["error"] = f"e{name} {r['error']}" if r["error"] else ""
    data["reference"], data["reference_error"] = f"b{name}onnxruntime", f"r{name} failed"
    text = _text(tables.bench_table(data))
    assert f"b{name}fake" in text and f"d{name}" in text and f"e{name}" in text and f"r{name} failed" in text
    assert f"### hwkit bench: {stem} " in markdown.read_text()
    changes, _, _ = compare_results(data, data)
    assert f"b{name}fake" in _text(tables.compare_table(changes, 0.05))

    code, out, err = cli(capsys, "run", str(model), "-b", "fake", "--dim", "batch=2")
    assert code == 0 and f"y{name}" in out and f"{stem} on fake" in out

    report = hwkit.check(str(model), ["fake"], reference="wrong", dims={"batch": 2})
    parity = _text(report.table())
    assert f"y{name}" in parity and stem in parity


def test_markup_in_an_error_line_on_stderr(capsys, fake_registry, tmp_path, monkeypatch):
    model = tmp_path / "mm.onnx"
    onnx.save(matmul_model(), model)
    out = tmp_path / f"no{MARKUP}such" / "r.json"
    code, _, err = cli(capsys, "bench", str(model), "-b", "fake", "--json", str(out))
    assert code == 2 and len(err) == 1 and f"no{MARKUP}such" in err[0]


# -- a 0-item batch ------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", [["--dim", "batch=0"], ["--shape", "x=0x4"]])
def test_row_51_a_zero_item_batch_is_refused_before_measuring(capsys, fake_registry, mm, tmp_path, flag):
    out_json = tmp_path / "r.json"
    code, out, err = cli(capsys, "bench", mm, "-b", "fake", *flag, *FAST, "--json", str(out_json))
    assert code == 2 and out == "" and not out_json.exists()
    assert err == ["hwkit: error: input 'x' has a batch of 0 items (shape 0x4): there is nothing to measure; "
                   "give a batch size >= 1 (--shape, --dim)"]


def test_row_51_a_zero_item_batch_in_the_api(fake_registry):
    with pytest.raises(OptionError, match="batch of 0 items"):
        hwkit.bench(matmul_model(), ["fake"], dims={"batch": 0}, isolation=False)
    with pytest.raises(OptionError, match="batch size must be a whole number >= 1"):
        hwkit.bench(matmul_model(), ["fake"], batches=[0], isolation=False)

