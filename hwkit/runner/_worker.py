"""The child side of isolation: ``python -m hwkit.runner._worker`` measures one backend.

It reads its job (a pickle from the parent hwkit process) on stdin and reports progress and
the finished ``BackendResult`` on the file descriptor named by ``HWKIT_RESULT_FD``.
"""

from __future__ import annotations

import os
import pickle
import resource
import sys

import psutil


def main() -> int:
    from hwkit.measure.bench import measure, record_failure
    from hwkit.runner.launch import send
    from hwkit.model.model import Model

    fd = int(os.environ["HWKIT_RESULT_FD"])
    job = pickle.loads(sys.stdin.buffer.read())  # written by our own parent process
    record = job["record"]
    try:
        model = Model.load(job["model"])
        model.name = job["name"]
        model.default_dims = job["default_dims"]
        record.rss_before_compile = psutil.Process().memory_info().rss
        measure(model, job["target"], job["input_sets"], job["settings"], record,
                lambda *update: send(fd, "progress", update))
    except Exception as e:  # this backend's failure, reported like in-process runs, not a crash
        record_failure(record, e)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    record.peak_rss = peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB
    send(fd, "result", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
