"""The hwkit command end to end, in fresh processes, as a user runs it."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from tests.helpers import FAST_BENCH, add_relu_model, run_cli


@pytest.fixture
def relu_file(tmp_path):
    path = tmp_path / "relu.onnx"
    onnx.save(add_relu_model(dynamic=True), path)
    return path


def test_backends_table_and_json():
    table = run_cli("backends")
    assert table.returncode == 0 and "onnxruntime" in table.stdout and "available" in table.stdout
    listing = json.loads(run_cli("backends", "--json").stdout)
    ort = next(b for b in listing if b["name"] == "onnxruntime")
    assert ort["status"] == "available" and ort["distribution"] == "hwkit-onnxruntime"
    assert ort["devices"][0]["name"] == "cpu" and "onnxruntime" in ort["versions"]


def test_run_prints_outputs_and_saves_them(relu_file, tmp_path):
    out = tmp_path / "out.npz"
    result = run_cli("run", str(relu_file), "-b", "openvino", "--dim", "batch=3", "--save", str(out))
    assert result.returncode == 0, result.stderr
    assert "y" in result.stdout and "float32" in result.stdout and "3x4" in result.stdout
    with np.load(out) as saved:
        assert saved["y"].shape == (3, 4) and (saved["y"] >= 0).all()


def test_bench_on_a_file_hwkit_did_not_produce(relu_file, tmp_path):
    report = tmp_path / "r.json"
    result = run_cli("bench", str(relu_file), "--shape", "x=2x4", "-b", "onnxruntime,openvino",
                     "--threads", "1", "--json", str(report), *FAST_BENCH)
    assert result.returncode == 0, result.stderr
    assert "onnxruntime" in result.stdout and "openvino" in result.stdout and "1 threads each" in result.stdout
    data = json.loads(report.read_text())
    assert data["schema"] == "hwkit.bench/2"
    assert [r["backend"] for r in data["results"]] == ["onnxruntime", "openvino"]
    assert all(r["status"] == "ok" and r["latency_s"]["count"] >= 3 for r in data["results"])
    assert all(r["options"]["threads"] == 1 for r in data["results"])
    assert data["results"][1]["agreement"][0]["max_abs"] == 0.0
    assert data["system"]["packages"]["onnxruntime"]


def test_bench_default_model():
    result = run_cli("bench", "-b", "onnxruntime", *FAST_BENCH)
    assert result.returncode == 0, result.stderr
    assert "hwkit bench: cnn (x=1x3x224x224)" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "missing.onnx"], "model file not found: missing.onnx"),
        (["run", "{notonnx}"], "not a readable ONNX model"),
        (["run", "{relu}", "--shape", "xx=1x4"], "unknown --shape name 'xx'; did you mean 'x'?"),
        (["run", "{relu}", "--shape", "x=1x5"], "axis 1 must be 4"),
        (["run", "{relu}"], "dynamic dimension(s) left unset"),
        (["run", "{relu}", "--shape", "x=1xfour"], "--shape takes NAME=AxBxC"),
        (["run", "{relu}", "--dim", "batch=1", "-b", "onnxrutime"], "did you mean 'onnxruntime'?"),
        (["run", "{relu}", "--dim", "batch=1", "-o", "turbo=1"], "unknown option(s) turbo"),
        (["bench", "{relu}", "--dim", "batch=1", "--json", "/no/such/folder/r.json"], "folder /no/such/folder does not exist"),
        (["bench", "{relu}", "--dim", "batch=1", "-o", "threads=2"], "-o takes BACKEND.NAME=VALUE"),
        (["bench", "--min-iters", "x"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, relu_file, tmp_path):
    notonnx = tmp_path / "notes.onnx"
    notonnx.write_text("hello, I am text")
    args = [a.replace("{relu}", str(relu_file)).replace("{notonnx}", str(notonnx)) for a in args]
    result = run_cli(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hwkit: error: ") and message in lines[0]
    assert "Traceback" not in result.stderr


def test_wrong_input_dtype_from_a_file(relu_file, tmp_path):
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.ones((1, 4), np.float64))
    result = run_cli("run", str(relu_file), "--inputs", str(inputs))
    assert result.returncode == 2
    assert "input 'x' must be float32, got float64" in result.stderr


def test_unsupported_op_lists_every_op(tmp_path):
    from tests.helpers import unknown_ops_model

    path = tmp_path / "custom.onnx"
    onnx.save(unknown_ops_model(), path)
    result = run_cli("run", str(path), "-b", "onnxruntime")
    assert result.returncode == 2
    assert "com.example.Frobnicate (nodes: frob)" in result.stderr and "com.example.Twiddle" in result.stderr
    bench = run_cli("bench", str(path), "-b", "onnxruntime,openvino", *FAST_BENCH)
    assert bench.returncode == 2 and bench.stderr.count("does not support 2 op type(s)") == 2
