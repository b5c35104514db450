"""Running one backend's measurement in a child process of its own.

A backend is native code from a vendor: it may crash the process, hang, or leave thread pools
that slow the next backend down. Each one therefore runs in a fresh ``python -m hwkit.runner._worker``
(not multiprocessing, so a user's script needs no ``if __name__ == "__main__"`` guard). The job
goes to the child's stdin as a pickle; progress and the result come back over a separate pipe,
so whatever a runtime prints cannot corrupt them. The parent waits with a deadline, and a child
that dies or overstays is reported as ``crashed`` or ``timeout`` while the others go on.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hwkit.measure.bench import BackendResult, BenchSettings, Progress
    from hwkit.model.model import Model

_HEADER = struct.Struct("<Q")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def run_isolated(
    model: Model,
    target: str,
    input_sets: Sequence[Mapping[str, np.ndarray]],
    settings: BenchSettings,
    record: BackendResult,
    progress: Progress | None = None,
) -> BackendResult:
    """Measure ``target`` in a child process; fill ``record`` with its result or its fate."""
    job = {
        "model": str(model.path) if model.path else model.serialized,
        "name": model.name,
        "default_dims": model.default_dims,
        "target": target,
        "input_sets": list(input_sets),
        "settings": settings,
        "record": record,
    }
    read_fd, write_fd = os.pipe()
    env = {**os.environ, "HWKIT_RESULT_FD": str(write_fd)}
    threads = str(settings.resolved_threads())
    env.update({var: threads for var in THREAD_VARIABLES})  # OpenMP/BLAS pools inside runtimes too
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "hwkit.runner._worker"],
            stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
            pass_fds=(write_fd,), start_new_session=True,  # Ctrl-C reaches the parent only
        )
        os.close(write_fd)
        try:
            assert child.stdin is not None
            child.stdin.write(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            child.stdin.close()
        except BrokenPipeError:
            pass  # the child died at start-up; its exit status below says how
        try:
            outcome = _collect(child, read_fd, settings.timeout, record, progress)
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
        record.error = f"no result after {settings.timeout:g} s (--timeout); the backend was stopped"
    else:
        record.status = "crashed"
        how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
        record.error = f"the backend's process died ({how})" + (f": {tail}" if tail else "")
    return record


def _collect(child: subprocess.Popen[bytes], fd: int, timeout: float, record: BackendResult,
             progress: Progress | None) -> BackendResult | None:
    """Read messages until the result arrives (returned) or the child dies or times out (None)."""
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
    if child.poll() is None:
        child.kill()
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
