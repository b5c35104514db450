"""The child side of ``ProcessLauncher``: ``python -m hwkit.runner._worker`` runs one job.

It reads the job (a pickle from the parent hwkit process) on stdin, calls the job's function,
and reports progress and the filled record on the file descriptor named by ``HWKIT_RESULT_FD``.
"""

from __future__ import annotations

import os
import pickle
import resource
import sys

import psutil


def main() -> int:
    from hwkit.model import Model
    from hwkit.runner.launch import call, send
    from hwkit.runner.record import record_failure

    fd = int(os.environ["HWKIT_RESULT_FD"])
    payload = pickle.loads(sys.stdin.buffer.read())  # written by our own parent process
    job = payload["job"]
    record = job.record
    try:
        model = Model.load(payload["model"])
        model.name = payload["name"]
        model.default_dims = payload["default_dims"]
        record.rss_before_compile = psutil.Process().memory_info().rss
        call(job, model, lambda *update: send(fd, "progress", update))
    except Exception as e:  # this backend's failure, reported like in-process runs, not a crash
        record_failure(record, e)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    record.peak_rss = peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB
    send(fd, "result", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
