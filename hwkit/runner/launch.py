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
from types import ModuleType
from typing import Any, Protocol

from hwkit.errors import HwkitError
from hwkit.model import Model
from hwkit.plugins import registry
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
    """In this process: no start-up cost, no protection from crashes, hangs or leaked threads.

    A plugin's ``sys.exit()`` is its failure, not hwkit's exit; so is a KeyboardInterrupt the
    plugin raised itself. A real Ctrl-C (SIGINT, seen by ``_user_interrupts``) still stops the run.
    """

    def launch(self, job: Job, progress: Progress | None = None) -> RunRecord:
        with _user_interrupts() as seen:
            try:
                call(job, job_model(job), progress)
            except KeyboardInterrupt as e:
                if seen or isinstance(e, Stopped) or not _can_tell():
                    raise  # the user's (or a service manager's) stop: end the run, keep what was measured
                record_failure(job.record, e)
            except (Exception, SystemExit) as e:  # recorded: one backend's failure is never the run's end
                record_failure(job.record, e)
        return job.record


def _can_tell() -> bool:
    """Only the main thread gets SIGINT's handler: elsewhere a KeyboardInterrupt's origin is unknown,
    and it is taken for the user's."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _user_interrupts() -> Iterator[list[int]]:
    """While the block runs, a SIGINT is noted (in the list yielded) before the usual handler
    raises KeyboardInterrupt, so a KeyboardInterrupt without one came from plugin code."""
    seen: list[int] = []
    if not _can_tell():
        yield seen
        return
    previous = signal.getsignal(signal.SIGINT)

    def note(signum: int, frame: Any) -> None:
        seen.append(signum)
        if callable(previous):
            previous(signum, frame)
        else:
            signal.default_int_handler(signum, frame)

    if previous in (signal.SIG_IGN, None):  # ignored (or set outside Python): nothing to note
        yield seen
        return
    signal.signal(signal.SIGINT, note)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


class ProcessLauncher:
    """In a child process of its own, with a deadline (the module docstring says why)."""

    def launch(self, job: Job, progress: Progress | None = None) -> RunRecord:
        model = job_model(job)
        payload = {
            "job": dataclasses.replace(job, model=None),  # the model travels as a path or bytes
            "model": str(model.path) if model.path else model.serialized,
            "name": model.name,
            "default_dims": model.default_dims,
            "registered": _registered_here(job.target),
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
        elif record.status != "crashed":  # else _collect said why itself
            record.status = "crashed"
            how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
            record.error = f"the backend's process died ({how})" + (f": {tail}" if tail else "")
        return record


def _registered_here(target: str) -> list[tuple[str, str | bytes]]:
    """The target's plugin when it was registered in this process (``registry().register``) rather
    than installed, as (plugin name, module name or pickled plugin object): the child registers it
    too, so it sees the same backend. One that cannot travel (defined in ``__main__`` or a closure)
    is named so, and the child's error says to run without isolation."""
    try:
        info = registry().get(target.partition(":")[0].strip())
    except HwkitError:
        return []  # the child reports it
    plugin = registry().pm.get_plugin(info.plugin)
    if info.distribution is not None or plugin is None:
        return []
    if isinstance(plugin, ModuleType):  # by name; a script's own (__main__) cannot be imported again
        return [(info.plugin, plugin.__name__ if plugin.__name__ != "__main__" else b"")]
    try:
        return [(info.plugin, pickle.dumps(plugin, protocol=pickle.HIGHEST_PROTOCOL))]
    except (pickle.PicklingError, TypeError, AttributeError):
        return [(info.plugin, b"")]


def launcher(isolation: bool) -> Launcher:
    """The process launcher when ``isolation``, else the inline one."""
    return ProcessLauncher() if isolation else InlineLauncher()


def _collect(child: subprocess.Popen[bytes], fd: int, timeout: float, record: RunRecord,
             progress: Progress | None) -> RunRecord | None:
    """Read messages until the record arrives (returned) or the child dies or times out (None).

    Every wait has the deadline. The worker's own exit ends it early: a helper process the
    backend started may hold the pipe open (no end-of-file) and a plugin may have closed the
    pipe (end-of-file while the worker lives), so the pipe alone tells neither. The worker's
    whole process group is killed in every ending.
    """
    deadline = time.monotonic() + timeout
    buffer = b""
    eof_at: float | None = None  # when the pipe reached end-of-file
    exited_at: float | None = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            _kill(child)
            record.status = "timeout"
            return None
        if exited_at is None and _exited(child):
            exited_at = now
        if exited_at is not None and (eof_at is not None or now - exited_at >= EXIT_GRACE):
            _kill(child)  # crashed (or exited without its result); its helpers go too
            return None
        if eof_at is not None and now - eof_at >= EXIT_GRACE:  # alive, yet no result can ever come
            _kill(child)
            record.status = "crashed"
            record.error = ("the backend's process closed its result pipe (HWKIT_RESULT_FD) and did not exit; "
                            "it was stopped: its plugin must leave that file descriptor open")
            return None
        wait = min(deadline - now, POLL_INTERVAL)
        if eof_at is not None:  # nothing more can come: wait for the worker's exit, briefly
            time.sleep(wait)
            continue
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            eof_at = time.monotonic()
            continue
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
                record.__dict__.update(vars(payload))  # the caller holds ``record``: fill it in
                until = min(deadline, time.monotonic() + EXIT_GRACE)  # let it exit on its own first
                while not _exited(child) and time.monotonic() < until:
                    time.sleep(POLL_INTERVAL / 5)
                _kill(child)
                return record


POLL_INTERVAL = 0.1  # seconds between checks of the worker's exit while the pipe is quiet
EXIT_GRACE = 1.0  # seconds a dead worker's pipe may stay open (a helper holding it) before it counts as crashed


def _exited(child: subprocess.Popen[bytes]) -> bool:
    """Whether the worker has ended, without reaping it: until ``_kill`` reaps it, its pid stays
    taken, so killing its process group can never reach an unrelated process."""
    if child.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return True


def _kill(child: subprocess.Popen[bytes]) -> None:
    """Kill the worker and whatever it started, alive or not (a helper may outlive the worker):
    it leads a process group of its own (its own session), so nothing of the backend outlives
    the run. Then reap the worker, keeping its own exit status."""
    if child.returncode is None:  # not reaped: the group id is still the worker's
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group is empty already
        except PermissionError:
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
