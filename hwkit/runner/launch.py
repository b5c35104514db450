"""Where one backend's job runs: the ``Launcher`` interface and its two implementations.

``InlineLauncher`` runs the job in this process (fast to start; a crash ends the whole run).
``ProcessLauncher`` runs it in a fresh ``python -m hwkit.runner._worker``: a backend is native
code from a vendor that may crash the process, hang, or leave thread pools that slow the next
backend down. Not multiprocessing, so a user's script needs no ``if __name__ == "__main__"``
guard. The job goes to the child's stdin as a pickle; progress and the filled record come back
over a separate pipe, so whatever a runtime prints cannot corrupt them. The parent waits with a
deadline; a child that dies or overstays is recorded as ``crashed`` or ``timeout`` while the
others go on. A third launcher (a fleet) implements the same one method.

The child leads a session of its own, so Ctrl-C reaches only the parent, which kills the child's
whole process group and keeps what was measured; ``stop_on_signals`` makes SIGTERM and SIGHUP
do the same (``Stopped``, a KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from hwkit.model import Model
from hwkit.runner.record import RunRecord, record_failure

Progress = Callable[[str, str, float], None]  # (backend, phase, fraction done)
_HEADER = struct.Struct("<Q")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # a service manager stopping us; a closed terminal


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) raised as an exception while ``stop_on_signals`` is on.

    A KeyboardInterrupt, so every ``except KeyboardInterrupt`` that stops the workers and keeps
    what was measured (the launchers, ``bench``) treats it exactly like Ctrl-C. The CLI exits
    with 128 + ``signum`` (143 for SIGTERM), as a shell reports a process the signal ended.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


def _raise_stopped(signum: int, _frame: Any) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise ``Stopped`` in the main thread instead of
    ending the process at once (which would leave the workers running and the results unwritten).

    A signal someone else handles or ignores (``nohup`` ignores SIGHUP) is left alone, and so is
    every signal outside the main thread, where Python cannot set handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    taken = [s for s in STOP_SIGNALS if signal.getsignal(s) == signal.SIG_DFL]
    for signum in taken:
        signal.signal(signum, _raise_stopped)
    try:
        yield
    finally:
        for signum in taken:
            signal.signal(signum, signal.SIG_DFL)


@dataclasses.dataclass
class Job:
    """One backend's share of a run, in a form a child process can receive (picklable).

    ``function`` ("package.module:name") is called as
    ``function(model, target, record, progress, **arguments)`` and fills ``record``; naming it
    by path keeps the runner below the scenarios that define such functions. ``model`` is None
    only in the copy pickled for a child process, which receives the model beside it.
    """

    function: str
    model: Model | None
    target: str
    record: RunRecord
    arguments: dict[str, Any] = dataclasses.field(default_factory=dict)
    threads: int | None = None  # also given to OpenMP/BLAS pools through the environment
    timeout: float = 600.0  # seconds (process launcher only)


class Launcher(Protocol):
    """Runs jobs somewhere; a failure of any kind ends up in ``job.record``, never raised."""

    def launch(self, job: Job, progress: Progress | None = None) -> RunRecord:
        """Run ``job`` and return its record, filled with the result or the failure."""
        ...


def job_model(job: Job) -> Model:
    """The job's model; a job without one (the child's copy) cannot be launched again."""
    if job.model is None:
        raise ValueError(f"job for {job.target} carries no model: it was prepared for a child process")
    return job.model


def call(job: Job, model: Model, progress: Progress | None) -> None:
    """Resolve the job's function and call it (both launchers and the worker use this)."""
    module, _, name = job.function.partition(":")
    function = getattr(importlib.import_module(module), name)
    function(model, job.target, job.record, progress, **job.arguments)


class InlineLauncher:
    """In this process: no start-up cost, no protection from crashes, hangs or leaked threads."""

    def launch(self, job: Job, progress: Progress | None = None) -> RunRecord:
        try:
            call(job, job_model(job), progress)
        except Exception as e:  # recorded: one backend's failure is never the run's end
            record_failure(job.record, e)
        return job.record


class ProcessLauncher:
    """In a child process of its own, with a deadline (the module docstring says why)."""

    def launch(self, job: Job, progress: Progress | None = None) -> RunRecord:
        model = job_model(job)
        payload = {
            "job": dataclasses.replace(job, model=None),  # the model travels as a path or bytes
            "model": str(model.path) if model.path else model.serialized,
            "name": model.name,
            "default_dims": model.default_dims,
        }
        record = job.record
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "HWKIT_RESULT_FD": str(write_fd)}
        if job.threads:
            env.update({var: str(job.threads) for var in THREAD_VARIABLES})
        with tempfile.TemporaryFile() as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "hwkit.runner._worker"],
                stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
                pass_fds=(write_fd,), start_new_session=True,  # Ctrl-C reaches the parent only
            )
            os.close(write_fd)
            try:  # from here on, whatever stops us (Ctrl-C, SIGTERM, a bug) stops the child too
                try:
                    if child.stdin is not None:
                        child.stdin.write(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
                        child.stdin.close()
                except BrokenPipeError:
                    pass  # the child died at start-up; its exit status below says how
                outcome = _collect(child, read_fd, job.timeout, record, progress)
            except BaseException:
                _kill(child)
                raise
            finally:
                os.close(read_fd)
            if outcome is not None:
                return outcome
            log.seek(0)
            tail = _tail(log.read())
        code = child.returncode
        if record.status == "timeout":
            record.error = f"no result after {job.timeout:g} s (--timeout); the backend was stopped"
        else:
            record.status = "crashed"
            how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
            record.error = f"the backend's process died ({how})" + (f": {tail}" if tail else "")
        return record


def launcher(isolation: bool) -> Launcher:
    """The process launcher when ``isolation``, else the inline one."""
    return ProcessLauncher() if isolation else InlineLauncher()


def _collect(child: subprocess.Popen[bytes], fd: int, timeout: float, record: RunRecord,
             progress: Progress | None) -> RunRecord | None:
    """Read messages until the record arrives (returned) or the child dies or times out (None)."""
    deadline = time.monotonic() + timeout
    buffer = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            _kill(child)
            record.status = "timeout"
            return None
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:  # the child closed its end: it exited
            child.wait()
            return None
        buffer += chunk
        while len(buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer)
            if len(buffer) < _HEADER.size + size:
                break
            kind, payload = pickle.loads(buffer[_HEADER.size:_HEADER.size + size])
            buffer = buffer[_HEADER.size + size:]
            if kind == "progress" and progress:
                progress(*payload)
            elif kind == "result":
                child.wait()
                record.__dict__.update(vars(payload))  # the caller holds ``record``: fill it in
                return record


def _kill(child: subprocess.Popen[bytes]) -> None:
    """Kill the worker and whatever it started: it leads a process group of its own (its own
    session), so nothing of the backend outlives the run."""
    if child.poll() is None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            child.kill()  # not (or no longer) a group leader
        child.wait()


def _tail(output: bytes, lines: int = 2) -> str:
    text = output.decode(errors="replace").strip().splitlines()
    return " | ".join(line.strip() for line in text[-lines:])[:300]


def send(fd: int, kind: str, payload: Any) -> None:
    """Child side: one length-prefixed message to the parent."""
    data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:  # a pipe may take a large message in several writes
        view = view[os.write(fd, view):]
