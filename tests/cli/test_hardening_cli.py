"""Hardening, second round, at the command line: a backend's wrong outputs fail its row (exit 2);
SIGTERM and SIGHUP stop a run as Ctrl-C does (workers killed, every requested file written, exit
128 + the signal); a median from too few runs shows no ±CI and says why; a reader that closes
stdout early (``| head``) costs no file and no traceback (exit 141); ``hwkit check`` labels a
backend that did not run as an error (exit 2), not a mismatch, and names it once.

In-process (``hwkit.cli.main``) where the test backends of tests/measure/test_hardening.py do;
in fresh processes where only a real process shows it (signals from outside, a closed pipe)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import psutil
import pytest

from hwkit.cli import main
from hwkit.cli.common import backend_error
from hwkit.runner.launch import stop_on_signals
from tests.helpers import FAST_BENCH, add_relu_model, cli, make_plugin_dist, signal_when_marked
from tests.measure.test_hardening import HardeningPlugin

FAST = ["--min-time", "0.01", "--min-iters", "3", "--warmup", "0", "--warmup-time", "0", "--target-ci", "0"]


@pytest.fixture
def relu(tmp_path: Path) -> str:
    path = tmp_path / "relu.onnx"
    onnx.save(add_relu_model(dynamic=True), path)
    return str(path)


@pytest.fixture
def wrong_registry(fake_registry):
    fake_registry.register(HardeningPlugin(), "hardening")
    return fake_registry




def bench_records(path: Path) -> dict[str, dict]:
    return {r["backend"]: r for r in json.loads(path.read_text())["results"]}


def errors(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("hwkit: error:")]


# -- 1: outputs that do not match the model -------------------------------------------------------

@pytest.mark.parametrize("mode, needle", [
    ("dtype", "output 'y' as float64, the model declares float32"),
    ("missing", "missing output 'y'"),
    ("list", "output 'y' as a list, not a numpy array"),
    ("batch", "output 'y' with shape (4, 4), the model declares [batch, 4] (batch=2 in the inputs)"),
])
def test_row_22_bench_fails_the_row_exits_2_after_every_file(capsys, wrong_registry, relu, tmp_path, mode, needle):
    paths = {kind: tmp_path / f"r.{kind}" for kind in ("json", "csv", "markdown")}
    code, out, err = cli(capsys, "bench", relu, "--dim", "batch=2", "-b", "fake,wrong", "-o", f"wrong.mode={mode}",
                         "--no-isolation", *FAST, *(a for k, p in paths.items() for a in (f"--{k}", str(p))))
    assert code == 2
    (line,) = errors(err)
    assert line.startswith("hwkit: error: backend 'wrong' returned ") and needle in line, line
    assert "Traceback" not in "\n".join(err)
    records = bench_records(paths["json"])
    assert records["wrong"]["status"] == "failed" and needle in records["wrong"]["error"]
    assert records["wrong"]["latency_s"] is None and records["wrong"]["parity"] is None  # no 0.31 µs, no FAIL/nan
    assert records["fake"]["status"] == "ok" and records["fake"]["latency_s"]["count"] >= 3
    rows = {r["backend"]: r for r in csv.DictReader(paths["csv"].read_text().splitlines())}
    assert rows["wrong"]["status"] == "failed" and rows["wrong"]["median_s"] == ""
    assert "**failed**" in paths["markdown"].read_text() and "failed" in out


def test_row_22_hwkit_run_names_the_difference(capsys, wrong_registry, relu, tmp_path):
    saved = tmp_path / "out.npz"
    code, out, err = cli(capsys, "run", relu, "--dim", "batch=2", "-b", "wrong", "-o", "mode=extra", "--save", str(saved))
    assert code == 2 and not saved.exists()  # wrong outputs are not saved as if they were the model's
    (line,) = err
    assert line.startswith("hwkit: error: backend 'wrong' returned ") and "extra output 'z'" in line
    code, out, err = cli(capsys, "run", relu, "--dim", "batch=2", "-b", "wrong", "--save", str(saved))
    assert code == 0 and saved.exists() and not err


# -- 7: SIGTERM and SIGHUP stop a run like Ctrl-C -------------------------------------------------

SLEEPY = """
import os
import subprocess
import time

import numpy as np
import hwkit
from hwkit import Backend, Device, Executable


class SleepyExecutable(Executable):
    def execute(self, inputs):
        helper = subprocess.Popen(["sleep", "300"])  # a process of the backend's own
        marker = os.environ["HWKIT_TEST_MARKER"]
        with open(marker + ".tmp", "w") as handle:
            handle.write(f"{os.getpid()} {helper.pid}")
        os.rename(marker + ".tmp", marker)
        time.sleep(300)
        return {"y": np.maximum(inputs["x"], 0)}


class Sleepy(Backend):
    name = "sleepy"

    def devices(self):
        return [Device("cpu", "cpu", "sleeps")]

    def compile(self, model, device, options):
        return SleepyExecutable(model, device, options)


@hwkit.hookimpl
def hwkit_register_backends():
    return [Sleepy]
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_row_23_sigterm_kills_the_workers_writes_every_file_exits_143(tmp_path, relu):
    site = tmp_path / "site"
    make_plugin_dist(site, "hwkit-sleepy", "sleepy", "hwkit_sleepy", SLEEPY)
    marker = tmp_path / "sleepy-started"
    paths = {kind: tmp_path / f"r.{kind}" for kind in ("json", "csv", "markdown")}
    env = {**os.environ, "COLUMNS": "200", "HWKIT_TEST_MARKER": str(marker),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-m", "hwkit.cli", "bench", relu, "--dim", "batch=2",
                              "-b", "onnxruntime,sleepy", "--threads", "1", *FAST_BENCH,
                              *(a for k, p in paths.items() for a in (f"--{k}", str(p)))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = signal_when_marked(child, marker, signal.SIGTERM)  # sleepy runs after onnxruntime
    worker, helper = map(int, marker.read_text().split())
    assert child.returncode == 143, err
    assert "Traceback" not in err and "hwkit: error:" not in err
    data = json.loads(paths["json"].read_text())
    assert data["interrupted"] is True and data["interrupted_by"] == "SIGTERM"
    records = {r["backend"]: r for r in data["results"]}
    assert records["onnxruntime"]["status"] == "ok" and records["onnxruntime"]["latency_s"]["count"] >= 3
    assert records["sleepy"]["status"] == "interrupted" and records["sleepy"]["error"] == "stopped by SIGTERM"
    assert "interrupted" in paths["csv"].read_text() and "**interrupted**" in paths["markdown"].read_text()
    assert "onnxruntime" in out and "INTERRUPTED" in out  # the table of what was measured
    deadline = time.monotonic() + 10
    while not (_gone(worker) and _gone(helper)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the helper, orphaned by the kill, is reaped by init
    assert _gone(worker) and _gone(helper), "a process of the backend outlived the run"


@pytest.mark.parametrize("stop, code", [("SIGHUP", 129), ("SIGTERM", 143)])
def test_row_23_a_stop_signal_in_process_keeps_what_was_measured(capsys, wrong_registry, relu, tmp_path, stop, code):
    report = tmp_path / "r.json"
    got, out, err = cli(capsys, "bench", relu, "--dim", "batch=2", "-b", "fake,wrong", "-o", f"wrong.stop={stop}",
                        "--no-isolation", "--json", str(report), *FAST)
    assert got == code and not errors(err)
    records = bench_records(report)
    assert records["fake"]["status"] == "ok" and records["wrong"]["status"] == "interrupted"
    assert records["wrong"]["error"] == f"stopped by {stop}" and json.loads(report.read_text())["interrupted_by"] == stop
    assert signal.getsignal(signal.Signals[stop]) == signal.SIG_DFL  # main gave the handler back


def test_row_23_a_stop_signal_in_another_command(capsys, wrong_registry, relu):
    code, _, err = cli(capsys, "check", relu, "--dim", "batch=2", "-b", "fake,wrong", "--reference", "fake",
                       "-o", "wrong.stop=SIGTERM", "--no-isolation")  # the signal is sent from the backend: in-process
    assert code == 143 and err == ["hwkit: stopped by SIGTERM"]


def test_row_23_a_signal_ignored_before_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


# -- 10b: no CI from too few runs -----------------------------------------------------------------

def test_row_24_too_few_runs_print_no_ci_and_say_why(capsys, fake_registry, relu, tmp_path):
    table, markdown = tmp_path / "r.csv", tmp_path / "r.md"
    code, out, err = cli(capsys, "bench", relu, "--dim", "batch=2", "-b", "timed", "--no-isolation",
                         "--min-iters", "3", "--min-time", "0", "--warmup", "0", "--warmup-time", "0", "--target-ci", "0",
                         "--csv", str(table), "--markdown", str(markdown))
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if line.startswith("│ timed")]
    assert "±" not in row and "│    3 │" in row  # no ±x% cell, 3 runs
    assert "3 runs are too few for a 95% interval of the median" in " ".join(out.split())
    assert "widest 95% CI of a median: n/a (1 of 1 without a CI: too few runs)" in " ".join(out.split())
    (row,) = csv.DictReader(table.read_text().splitlines())
    assert row["ci_low_s"] == row["ci_high_s"] == "" and row["runs"] == "3" and row["median_s"]
    assert "none: 3 runs are too few" in markdown.read_text()


# -- 10c: a reader that closes stdout early -------------------------------------------------------

def _closed_stdout(*args: str) -> tuple[int, str]:
    """Run hwkit with its stdout a pipe whose reader has already gone: (exit code, stderr)."""
    child = subprocess.Popen([sys.executable, "-m", "hwkit.cli", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    assert child.stdout is not None
    child.stdout.close()  # before hwkit writes anything: its first write meets EPIPE
    try:
        err = child.communicate(timeout=120)[1]
    finally:
        if child.poll() is None:
            child.kill()
    return child.returncode, err


def test_row_25_bench_into_a_closed_pipe_writes_every_file_and_exits_141(relu, tmp_path):
    paths = {kind: tmp_path / f"r.{kind}" for kind in ("json", "csv", "markdown")}
    code, err = _closed_stdout("bench", relu, "--dim", "batch=2", "-b", "onnxruntime", "--threads", "1", *FAST_BENCH,
                               *(a for k, p in paths.items() for a in (f"--{k}", str(p))))
    assert code == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err
    assert bench_records(paths["json"])["onnxruntime"]["status"] == "ok"
    assert "onnxruntime" in paths["csv"].read_text() and "onnxruntime" in paths["markdown"].read_text()


@pytest.mark.parametrize("args", [("backends",), ("backends", "--json")])
def test_row_25_every_command_into_a_closed_pipe_is_quiet(args):
    code, err = _closed_stdout(*args)  # a rich table, and plain print()
    assert code == 141 and err == "", err


def test_row_25_help_into_a_closed_pipe_is_quiet():
    code, err = _closed_stdout("bench", "--help")
    assert err == "" and code in (0, 141)  # argparse itself ignores the failed write of its help


# -- 10e: a backend that did not run, in hwkit check ----------------------------------------------

def test_row_26_check_a_backend_that_fails_to_compile_is_an_error_named_once(capsys, wrong_registry, relu):
    code, _, err = cli(capsys, "check", relu, "--dim", "batch=2", "-b", "fake,nocompile", "--reference", "fake")
    assert code == 2
    assert err == ["hwkit: error: nocompile: node 'relu' (Relu) cannot be converted: no kernel for float32"]
    code, _, err = cli(capsys, "check", relu, "--dim", "batch=2", "-b", "fake,nocompile:cpu", "--reference", "fake")
    assert code == 2 and err == ["hwkit: error: nocompile:cpu: node 'relu' (Relu) cannot be converted: no kernel "
                                 "for float32"]
    code, _, err = cli(capsys, "check", relu, "--dim", "batch=2", "-b", "fake,buggy", "--reference", "fake")
    assert code == 2 and err == ["hwkit: error: backend 'buggy' failed to compile 'relu': KeyError: 'relu'"]


def test_row_26_check_exit_codes_mismatch_1_failure_2(capsys, wrong_registry, relu):
    code, _, err = cli(capsys, "check", relu, "--dim", "batch=2", "-b", "timed,fake", "--reference", "timed",
                       "-o", "fake.scale=2")
    assert code == 1 and err and all(line.startswith("hwkit: mismatch: fake: output 'y'") for line in err)
    code, _, err = cli(capsys, "check", relu, "--dim", "batch=2", "-b", "timed,fake,nocompile", "--reference", "timed",
                       "-o", "fake.scale=2")
    assert code == 2  # a backend that did not run makes the answer incomplete, whatever the others say
    assert [line.split(":")[1].strip() for line in err] == ["mismatch", "error"], err


def test_row_26_check_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1: a mismatch" in text and "2: a bad input or setting, or a backend that failed" in text
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "143 (SIGTERM)" in text and "141: stdout was closed early" in text


@pytest.mark.parametrize("target, error, line", [
    ("cpu", "cpu: node 'n' failed", "cpu: node 'n' failed"),
    ("cpu", "node 'n' failed", "cpu: node 'n' failed"),
    ("cpu", "backend 'cpu' failed to compile 'm': X", "backend 'cpu' failed to compile 'm': X"),
    ("openvino:GPU", "openvino: no GPU", "openvino:GPU: no GPU"),
    ("openvino:GPU", "openvino:GPU: busy", "openvino:GPU: busy"),
    ("openvino:GPU", "backend 'openvino' failed", "openvino:GPU: backend 'openvino' failed"),
    ("cpu", "cpuinfo: unreadable", "cpu: cpuinfo: unreadable"),
])
def test_row_26_a_backend_is_named_once(target, error, line):
    assert backend_error(target, error) == line


def test_an_error_before_measuring_is_the_only_line_on_stderr(tmp_path):
    """No blank line from a progress bar that never started (nor one on a pipe)."""
    from tests.helpers import run_cli

    done = run_cli("bench", "encoder", "--dim", "batsh=1")
    assert done.returncode == 2 and done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("hwkit: error: unknown dimension name(s) batsh")
