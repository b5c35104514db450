"""The process launcher ends every job within seconds of its worker's end, whatever the plugin
did to the result pipe, and leaves no process of the backend behind: a helper holding the pipe
after the worker crashed, a forked child keeping it, a plugin closing every descriptor."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import add_relu_model, make_plugin_dist, run_cli

PLUGIN = """
import os
import signal
import subprocess
import sys
import time

import numpy as np
import hwkit
from hwkit import Backend, Device, Executable


def _mark(pids):
    marker = os.environ["HWKIT_TEST_MARKER"]
    with open(marker + ".tmp", "w") as handle:
        handle.write(" ".join(map(str, pids)))
    os.rename(marker + ".tmp", marker)


class TrickyExecutable(Executable):
    def execute(self, inputs):
        how = os.environ["HWKIT_TEST_HOW"]
        fd = int(os.environ["HWKIT_RESULT_FD"])
        if how == "helper-segfault":  # a backend's helper process inherits the result pipe
            helper = subprocess.Popen(["sleep", "300"], pass_fds=(fd,))
            _mark([os.getpid(), helper.pid])
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGSEGV)
        if how == "helper-ok" and not os.path.exists(os.environ["HWKIT_TEST_MARKER"]):
            _mark([os.getpid(), subprocess.Popen(["sleep", "300"]).pid])  # a helper left running
        if how == "fork-exit":  # a forked child keeps the pipe; the worker exits
            child = os.fork()
            if child == 0:
                time.sleep(300)
                os._exit(0)
            _mark([os.getpid(), child])
            os._exit(7)
        if how in ("close-hang", "close-exit"):  # the plugin closes every descriptor above 2
            _mark([os.getpid()])
            os.closerange(3, 1024)
            if how == "close-exit":
                os._exit(5)
            time.sleep(300)
        return {"y": np.maximum(inputs["x"], 0)}


class Tricky(Backend):
    name = "tricky"

    def devices(self):
        return [Device("cpu", "cpu", "tricky")]

    def compile(self, model, device, options):
        return TrickyExecutable(model, device, options)


@hwkit.hookimpl
def hwkit_register_backends():
    return [Tricky]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    make_plugin_dist(folder, "hwkit-tricky", "tricky", "hwkit_tricky", PLUGIN)
    return folder


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _run(site: Path, tmp_path: Path, how: str, code: int = 2) -> tuple[dict, str, float, list[int]]:
    import onnx

    model = tmp_path / "m.onnx"
    onnx.save(add_relu_model(), model)
    marker, report = tmp_path / "started", tmp_path / "r.json"
    started = time.monotonic()
    done = run_cli("bench", str(model), "-b", "tricky", "--timeout", "120", "--json", str(report),
                   "--min-iters", "1", "--min-time", "0", "--warmup", "0", "--warmup-time", "0", "--target-ci", "0",
                   site=site, env={"HWKIT_TEST_HOW": how, "HWKIT_TEST_MARKER": str(marker)}, timeout=100)
    took = time.monotonic() - started
    assert "Traceback" not in done.stderr and done.returncode == code, done.stderr
    pids = [int(p) for p in marker.read_text().split()]
    deadline = time.monotonic() + 10
    while not all(map(_gone, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)  # orphans killed with the group are reaped by init
    assert all(map(_gone, pids)), f"a process of the backend outlived the run: {pids}"
    (record,) = json.loads(report.read_text())["results"]
    return record, done.stderr, took, pids


# Every case must end within seconds of the worker's end, far from the 120 s --timeout; 60 s
# leaves room for a slow start-up on a loaded machine while still proving the deadline was not hit.
@pytest.mark.parametrize("how, error", [
    ("helper-segfault", "the backend's process died (signal SIGSEGV)"),
    ("fork-exit", "the backend's process died (exit code 7)"),
    ("close-exit", "the backend's process died (exit code 5)"),
    ("close-hang", "closed its result pipe (HWKIT_RESULT_FD) and did not exit"),
])
def test_row_57_a_worker_that_ends_is_seen_at_once_and_its_group_is_killed(site, tmp_path, how, error):
    record, stderr, took, _ = _run(site, tmp_path, how)
    assert record["status"] == "crashed" and error in record["error"], record
    assert error in stderr and took < 60


def test_row_58_a_clean_ending_kills_the_group_too(site, tmp_path):
    """A worker that delivers its result and exits still takes its helpers with it."""
    record, _, _, pids = _run(site, tmp_path, "helper-ok", code=0)
    assert record["status"] == "ok" and len(pids) == 2  # _run checked that both are gone


def test_row_58_kill_reaches_the_helpers_of_a_live_worker(tmp_path):
    import subprocess
    import sys

    from hwkit.runner.launch import _kill

    leader = subprocess.Popen([sys.executable, "-c", "import subprocess; subprocess.Popen(['sleep', '300']); "
                               "print(flush=True)"], stdout=subprocess.PIPE, start_new_session=True)
    assert leader.stdout is not None
    leader.stdout.readline()  # the helper has started
    helpers = [p.pid for p in psutil.process_iter() if _in_group(p, leader.pid) and p.pid != leader.pid]
    assert helpers
    _kill(leader)
    deadline = time.monotonic() + 10
    while not all(map(_gone, helpers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(map(_gone, helpers)) and leader.returncode is not None


def _in_group(process: psutil.Process, group: int) -> bool:
    try:
        return os.getpgid(process.pid) == group
    except (ProcessLookupError, PermissionError):
        return False
