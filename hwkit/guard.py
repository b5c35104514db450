"""The guard hwkit runs plugin code in: what counts as a plugin's failure (``sys.exit()`` and a
``KeyboardInterrupt`` it raises included), its stdout kept off hwkit's (so ``--json`` output stays
valid), and a plugin's import tried first in a child process with a deadline (so one that hangs or
crashes at import cannot take the other backends down).

May import: ``hwkit.errors`` only.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

from hwkit.errors import PluginError

# A plugin calling sys.exit() or raising KeyboardInterrupt is broken like one raising anything else.
PLUGIN_ERRORS = (Exception, SystemExit, KeyboardInterrupt)


def describe(e: BaseException) -> str:
    """An exception raised by plugin code, for a reason text."""
    if isinstance(e, SystemExit):
        return f"SystemExit (the plugin called sys.exit({e.code!r}))"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send what plugin code prints (Python or native) to stderr, so hwkit's stdout stays valid
    JSON. Process-wide while it lasts, like any stdout redirection."""
    if sys.stdout is not None:
        sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no fd 1 (a GUI or embedded interpreter): nothing native to redirect
        saved = -1
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        _flush_c_stdio()  # native printf output buffered in C must land in stderr, not later in stdout
        if saved >= 0:
            os.dup2(saved, 1)
            os.close(saved)


def _flush_c_stdio() -> None:
    with contextlib.suppress(OSError, AttributeError, TypeError):  # no C library to ask (Windows)
        ctypes.CDLL(None).fflush(None)


import_checks: dict[str, str] = {}  # module -> "" if it imports in a child process, else why not


def check_imports(points: list[importlib.metadata.EntryPoint]) -> None:
    """Import each plugin module in a child process (in parallel, with one deadline) before
    hwkit imports it: a plugin that hangs or crashes the interpreter at import fails alone."""
    raw = os.environ.get("HWKIT_PLUGIN_IMPORT_TIMEOUT", "10")
    try:
        timeout = float(raw)
        if not math.isfinite(timeout):
            raise ValueError(raw)
    except ValueError:
        raise PluginError(f"HWKIT_PLUGIN_IMPORT_TIMEOUT={raw!r} is not a number of seconds; "
                          "set e.g. 10, or 0 to skip the import check") from None
    todo = sorted({ep.module for ep in points} - set(import_checks) - set(sys.modules))
    if timeout <= 0 or not sys.executable or not todo:
        return
    code = "import importlib, sys; sys.path[:] = sys.argv[2:]; importlib.import_module(sys.argv[1])"
    children = {m: subprocess.Popen([sys.executable, "-c", code, m, *sys.path], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for m in todo}
    deadline = time.monotonic() + timeout
    for module, child in children.items():
        try:
            rc = child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            import_checks[module] = (f"importing {module} did not finish within {timeout:g} s (it hangs or is "
                                      "very slow; raise HWKIT_PLUGIN_IMPORT_TIMEOUT if it is only slow)")
            continue
        # rc > 0 or SIGINT (an uncaught KeyboardInterrupt): the import raised; importing it here
        # reproduces that in a guard and classifies it
        crashed = rc < 0 and rc != -signal.SIGINT
        import_checks[module] = f"importing {module} crashed the interpreter ({_signal_name(-rc)})" if crashed else ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
