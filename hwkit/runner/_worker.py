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
    from hwkit.plugins import registry
    from hwkit.runner.launch import call, send
    from hwkit.runner.record import record_failure

    fd = int(os.environ["HWKIT_RESULT_FD"])
    payload = pickle.loads(sys.stdin.buffer.read())  # written by our own parent process
    job = payload["job"]
    record = job.record
    try:
        for name, plugin in payload.get("registered", []):  # the parent's in-process plugins
            registry().register(_plugin(name, plugin), name)
        model = Model.load(payload["model"])
        model.name = payload["name"]
        model.default_dims = payload["default_dims"]
        record.rss_before_compile = psutil.Process().memory_info().rss
        call(job, model, lambda *update: send(fd, "progress", update))
    except (Exception, SystemExit, KeyboardInterrupt) as e:
        # This backend's failure, reported like in-process runs, not a crash. The worker leads a
        # session of its own, so the user's Ctrl-C never reaches it: a KeyboardInterrupt here, like
        # a SystemExit, is plugin code's (the parent kills the worker on a real stop).
        record_failure(record, e)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    record.peak_rss = peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB
    send(fd, "result", record)
    return 0


def _plugin(name: str, plugin: str | bytes) -> object:
    """A plugin the parent registered in its own process: a module to import, or a pickled object."""
    import importlib

    from hwkit.errors import BackendUnavailableError

    why = "it lives only there (a script's __main__, a closure, an object that cannot be pickled)"
    try:
        if plugin:  # empty: the parent could not send it
            return importlib.import_module(plugin) if isinstance(plugin, str) else pickle.loads(plugin)
    except Exception as e:  # unimportable, or the pickle names what this process cannot load
        why = f"{type(e).__name__}: {e}"
    raise BackendUnavailableError(
        f"plugin '{name}' was registered in the calling process and a backend's child process cannot "
        f"load it ({why}); run without isolation (isolation=False, --no-isolation)")


if __name__ == "__main__":
    sys.exit(main())
