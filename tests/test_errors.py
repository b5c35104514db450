"""One test per row of docs/errors.md (``test_row_NN_...``): what hwkit prints, its exit code,
and that the results already measured are kept. Rows 19 and 20 live in test_external_data.py.

Most rows run the CLI in this process (fast); plugin and isolation rows run it in a fresh
process with fake plugin distributions installed next to it, as a user would meet them.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

import hwkit
from hwkit._files import atomic_write
from hwkit.cli import main
from hwkit.errors import ModelError, OutputError
from hwkit.model.npz import load_inputs
from tests.helpers import (
    cli,
    FAST_BENCH,
    add_relu_model,
    make_plugin_dist,
    plugin_source,
    run_cli,
    signal_when_marked,
    unknown_ops_model,
)


@pytest.fixture
def relu(tmp_path: Path) -> Path:
    path = tmp_path / "relu.onnx"
    onnx.save(add_relu_model(dynamic=True), path)
    return path




def one_error_line(lines: list[str], *needles: str) -> str:
    """The single 'hwkit: error:' line, checked to contain every needle."""
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("hwkit: error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# -- the model file ---------------------------------------------------------------------------

def test_row_01_model_path_does_not_exist(capsys, tmp_path):
    code, _, err = cli(capsys, "run", str(tmp_path / "missing.onnx"))
    assert code == 2
    one_error_line(err, "model file not found:", "pass an existing .onnx file or a built-in model (mlp")


@pytest.mark.parametrize("content, needle", [
    (b"hello, I am text", "is not a readable ONNX model"),
    (b"PK\x03\x04 a zip", "export it with hwkit.Model.from_torch"),
])
def test_row_02_not_an_onnx_file(capsys, tmp_path, content, needle):
    path = tmp_path / "notes.onnx"
    path.write_bytes(content)
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2
    one_error_line(err, needle)


def test_row_03_truncated_onnx_file(capsys, tmp_path):
    data = add_relu_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) * 2 // 3])
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2
    one_error_line(err, str(path), "check that the file is complete")


def test_row_04_valid_protobuf_invalid_graph(capsys, tmp_path):
    proto = add_relu_model()
    proto.graph.node[1].input[0] = "does_not_exist"
    path = tmp_path / "bad_graph.onnx"
    path.write_bytes(proto.SerializeToString())
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2
    one_error_line(err, "is not a valid ONNX graph", "does_not_exist", "re-export the model")


def test_row_05_unsupported_ops_listed_at_compile(capsys, tmp_path):
    path = tmp_path / "custom.onnx"
    onnx.save(unknown_ops_model(), path)
    hwkit.Model.load(path)  # loading accepts it: only a backend can say what it lacks
    for backend in ("onnxruntime", "openvino"):
        code, _, err = cli(capsys, "run", str(path), "-b", backend)
        assert code == 2
        one_error_line(err, f"backend '{backend}' does not support 2 op type(s)", "Frobnicate (nodes: frob)",
                       "Twiddle (nodes: twid)", "Try another backend")


# -- inputs -----------------------------------------------------------------------------------

def test_row_06_wrong_input_name(capsys, relu, tmp_path):
    code, _, err = cli(capsys, "run", str(relu), "--shape", "xx=1x4")
    assert code == 2
    one_error_line(err, "unknown --shape name 'xx'; did you mean 'x'?", "the model's inputs are: x")
    inputs = tmp_path / "in.npz"
    np.savez(inputs, X=np.ones((1, 4), np.float32))
    code, _, err = cli(capsys, "run", str(relu), "--inputs", str(inputs))
    assert code == 2
    one_error_line(err, "unknown input name 'X'; did you mean 'x'?")


def test_row_07_wrong_input_shape(capsys, relu, tmp_path):
    code, _, err = cli(capsys, "run", str(relu), "--shape", "x=1x5")
    assert code == 2
    one_error_line(err, "'x' has shape (1, 5) but the model expects (batch, 4): axis 1 must be 4")
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.ones((4,), np.float32))
    code, _, err = cli(capsys, "run", str(relu), "--inputs", str(inputs))
    assert code == 2
    one_error_line(err, "input 'x' has shape (4,)", "(2 axes)")


def test_row_08_wrong_input_dtype(capsys, relu, tmp_path):
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.ones((1, 4), np.float64))
    code, _, err = cli(capsys, "run", str(relu), "--inputs", str(inputs))
    assert code == 2
    one_error_line(err, "input 'x' must be float32, got float64; convert it with .astype('float32')")


def test_row_09_dynamic_dimension_left_unset(capsys, relu):
    code, _, err = cli(capsys, "run", str(relu))
    assert code == 2
    one_error_line(err, "dynamic dimension(s) left unset: 'batch' (x axis 0)", "set them with --dim batch=1")
    code, _, err = cli(capsys, "bench", str(relu), "-b", "onnxruntime")
    assert code == 2
    one_error_line(err, "dynamic dimension(s) left unset")


def test_row_10_unknown_backend_did_you_mean(capsys, relu):
    code, _, err = cli(capsys, "run", str(relu), "--dim", "batch=1", "-b", "onxruntime")
    assert code == 2
    one_error_line(err, "no backend named 'onxruntime'; did you mean 'onnxruntime'?", "Installed backends:")
    code, _, err = cli(capsys, "bench", str(relu), "--dim", "batch=1", "-b", "onnxruntime,openvnio")
    assert code == 2  # refused before anything is measured
    one_error_line(err, "did you mean 'openvino'?")


# -- plugins ----------------------------------------------------------------------------------

@pytest.fixture
def static_relu(tmp_path: Path) -> Path:
    path = tmp_path / "relu2x4.onnx"
    onnx.save(add_relu_model(), path)
    return path


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("hwkit: warning:")]


def test_row_11_plugin_that_raises_at_import(tmp_path, static_relu):
    make_plugin_dist(tmp_path / "site", "hwkit-broken", "broken", "hwkit_broken", "raise RuntimeError('boom at import')\n")
    # listing loads every plugin (`-b onnxruntime` would not even import this one)
    result = run_cli("backends", site=tmp_path / "site")
    assert result.returncode == 0, result.stderr  # the other backends still work
    assert "onnxruntime" in result.stdout and "available" in result.stdout
    (line,) = warning_lines(result.stderr)
    assert "plugin 'broken' (hwkit-broken 0.1.0) failed: import raised RuntimeError: boom at import" in line
    assert "HWKIT_DISABLE_PLUGINS=broken" in line, line  # names the fix


def test_row_12_plugin_whose_hook_raises(tmp_path, static_relu):
    make_plugin_dist(tmp_path / "site", "hwkit-hookfail", "hookfail", "hwkit_hookfail", """
        import hwkit
        @hwkit.hookimpl
        def hwkit_register_backends():
            raise ValueError("no backends today")
    """)
    result = run_cli("backends", site=tmp_path / "site")  # listing loads every plugin
    assert result.returncode == 0, result.stderr
    assert "onnxruntime" in result.stdout and "available" in result.stdout
    (line,) = warning_lines(result.stderr)
    assert "plugin 'hookfail' (hwkit-hookfail 0.1.0) failed: hwkit_register_backends raised ValueError" in line
    assert "HWKIT_DISABLE_PLUGINS=hookfail" in line, line


def test_row_13_two_plugins_registering_one_name(tmp_path, static_relu):
    site = tmp_path / "site"
    make_plugin_dist(site, "hwkit-one", "one", "hwkit_one", plugin_source(("twin", "pass")))
    make_plugin_dist(site, "hwkit-two", "two", "hwkit_two", plugin_source(("twin", "pass")))
    result = run_cli("run", str(static_relu), "-b", "twin", site=site)
    assert result.returncode == 2
    one_error_line([ln for ln in result.stderr.splitlines() if ln.startswith("hwkit: error")],
                   "backend 'twin' is failed: backend name 'twin' is registered by 'one' (hwkit-one) and 'two' "
                   "(hwkit-two); uninstall one or block one with HWKIT_DISABLE_PLUGINS")
    fine = run_cli("run", str(static_relu), "-b", "onnxruntime", site=site)
    assert fine.returncode == 0, fine.stderr


# -- outputs and files ------------------------------------------------------------------------

def test_row_16_nan_and_inf_outputs_are_flagged(tmp_path, static_relu):
    site = tmp_path / "site"
    make_plugin_dist(site, "hwkit-nan", "nan", "hwkit_nan", plugin_source(
        ("nanny", "return {self.model.outputs[0].name: np.array([[np.nan, np.inf, 1, 1]] * 2, np.float32)}")))
    report = tmp_path / "r.json"
    result = run_cli("bench", str(static_relu), "-b", "onnxruntime,nanny", "--json", str(report), *FAST_BENCH,
                     site=site)
    data = json.loads(report.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    nanny = next(r for r in data["results"] if r["backend"] == "nanny")
    (agreement,) = nanny["agreement"]
    assert agreement["nan"] == 2 and agreement["inf"] == 2 and agreement["max_abs"] == "inf"  # strict JSON
    row = next(line for line in result.stdout.splitlines() if line.strip("│ ").startswith("nanny"))
    assert "inf" in row and "FAIL" in row, row
    assert result.returncode == 0, result.stderr  # measured; the table flags the disagreement


def test_row_18_unwritable_output_detected_before_the_run(capsys, monkeypatch, relu, tmp_path):
    def must_not_measure(*args, **kwargs):
        raise AssertionError("measured before checking the output path")

    monkeypatch.setattr("hwkit.cli.bench_cmd.bench", must_not_measure)
    for target, needle in ((tmp_path / "no" / "such" / "r.json", "does not exist; create it first"),
                           (tmp_path, "is a folder; give a file path")):
        code, _, err = cli(capsys, "bench", str(relu), "--dim", "batch=1", "--json", str(target))
        assert code == 2
        one_error_line(err, needle)
    code, _, err = cli(capsys, "run", str(relu), "--dim", "batch=1", "--save", str(tmp_path / "nope" / "o.npz"))
    assert code == 2
    one_error_line(err, "does not exist; create it first")


def test_row_19_path_traversal_from_the_cli(capsys, tmp_path):
    from tests.model.test_external_data import external_model

    path = tmp_path / "evil.onnx"
    onnx.save(external_model("../../../../../../etc/passwd"), path)
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2
    one_error_line(err, "outside the model's folder; refused for safety")
    # Row 19's no-read-before-refusal and row 20 (over 2 GB): tests.model.test_external_data.py


# -- safety of files read and written ---------------------------------------------------------

class _Trap:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(self.marker),))


def test_pickle_bearing_npz_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "inputs.npz"
    np.savez(evil, x=np.array([_Trap(str(marker))], dtype=object))
    assert b"touch" in evil.read_bytes() or evil.stat().st_size > 0
    with pytest.raises(ModelError, match="is not a readable .npz file of arrays"):
        load_inputs(evil)
    assert not marker.exists()
    raw = tmp_path / "pickle.npz"  # a bare pickle renamed .npz
    raw.write_bytes(pickle.dumps(_Trap(str(marker))))
    with pytest.raises(ModelError):
        load_inputs(raw)
    assert not marker.exists()


def test_atomic_write_never_leaves_a_half_written_file(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    atomic_write(target, '{"old": true}\n')

    def crash(fd: int) -> None:
        raise OSError(5, "Input/output error")  # the disk fails in the middle of the write

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OutputError, match="cannot write .*r.json: Input/output error; choose a writable path"):
        atomic_write(target, '{"new": ' + "1" * 100_000)
    assert target.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left


def test_atomic_write_keeps_normal_permissions(tmp_path):
    target = atomic_write(tmp_path / "r.json", "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


# -- isolation: crashes, hangs, Ctrl-C (hwkit/isolation.py) -----------------------------------

def bench_json(report: Path) -> dict[str, dict]:
    return {r["backend"]: r for r in json.loads(report.read_text())["results"]}


def test_row_14_backend_that_kills_its_process(tmp_path, static_relu):
    site = tmp_path / "site"
    make_plugin_dist(site, "hwkit-crash", "crash", "hwkit_crash", plugin_source(
        ("aborter", "os.abort()"), ("segfaulter", "ctypes.string_at(0)")))
    report = tmp_path / "r.json"
    result = run_cli("bench", str(static_relu), "-b", "aborter,segfaulter,onnxruntime", "--threads", "1",
                     "--json", str(report), *FAST_BENCH, site=site)
    assert result.returncode == 2, result.stderr  # a backend failed; the one measured is kept
    records = bench_json(report)
    assert records["onnxruntime"]["status"] == "ok" and records["onnxruntime"]["latency_s"]["count"] >= 3
    assert records["aborter"]["status"] == "crashed" and "SIGABRT" in records["aborter"]["error"]
    assert records["segfaulter"]["status"] == "crashed" and "SIGSEGV" in records["segfaulter"]["error"]
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("hwkit: error:")]
    assert len(errors) == 2 and all("process died" in ln for ln in errors), result.stderr
    assert "crashed" in result.stdout and "onnxruntime" in result.stdout


def test_row_15_backend_that_hangs(tmp_path, static_relu):
    site = tmp_path / "site"
    make_plugin_dist(site, "hwkit-hang", "hang", "hwkit_hang", plugin_source(("hanger", "time.sleep(10_000)")))
    report = tmp_path / "r.json"
    start = time.monotonic()
    result = run_cli("bench", str(static_relu), "-b", "hanger,onnxruntime", "--threads", "1", "--timeout", "4",
                     "--json", str(report), *FAST_BENCH, site=site, timeout=120)
    assert time.monotonic() - start < 60
    assert result.returncode == 2, result.stderr
    records = bench_json(report)
    assert records["hanger"]["status"] == "timeout" and "--timeout" in records["hanger"]["error"]
    assert records["onnxruntime"]["status"] == "ok"
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("hwkit: error:")]
    assert "hanger: no result after 4 s (--timeout)" in line


def test_row_17_ctrl_c_keeps_results_prints_the_table_exits_130(tmp_path, static_relu):
    site = tmp_path / "site"
    marker = tmp_path / "second-backend-started"
    make_plugin_dist(site, "hwkit-slow", "slow", "hwkit_slow", plugin_source(
        ("sleeper", "open(os.environ['HWKIT_TEST_MARKER'], 'w').close(); time.sleep(10_000)")))
    report = tmp_path / "r.json"
    env = {**os.environ, "COLUMNS": "200", "HWKIT_TEST_MARKER": str(marker),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-m", "hwkit.cli", "bench", str(static_relu), "-b", "onnxruntime,sleeper",
                              "--threads", "1", "--json", str(report), *FAST_BENCH],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = signal_when_marked(child, marker, signal.SIGINT, settle=0.3)  # the sleeper runs after onnxruntime
    assert child.returncode == 130, err
    records = bench_json(report)
    assert records["onnxruntime"]["status"] == "ok" and records["onnxruntime"]["latency_s"]["count"] >= 3
    assert records["sleeper"]["status"] == "interrupted"
    assert "onnxruntime" in out and "interrupted" in out  # the table of what was measured
    assert "Traceback" not in err


def test_row_21_compare_refuses_a_result_of_another_kind(capsys, tmp_path):
    check = tmp_path / "check.json"
    check.write_text(json.dumps({"schema": "hwkit.check/1", "passed": True}))
    truncated = tmp_path / "cut.json"
    truncated.write_text('{"schema": "hwkit.bench/1", "results": [')
    assert main(["compare", str(check), str(check)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a hwkit.check/1 result, not hwkit.bench/1 or hwkit.bench/2; write one with hwkit bench --json" in err
    assert main(["compare", str(truncated), str(truncated)]) == 2
    assert "is not a readable JSON result" in capsys.readouterr().err
