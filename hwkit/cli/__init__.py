"""The ``hwkit`` command. Each subcommand lives in its own module with ``add_parser`` and
``run``; this module dispatches and turns every hwkit error into one line and exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from hwkit.cli import backends_cmd
from hwkit.cli import bench_cmd
from hwkit.cli import check_cmd
from hwkit.cli import cluster_cmd
from hwkit.cli import compare_cmd
from hwkit.cli import history_cmd
from hwkit.cli import install_cmd
from hwkit.cli import merge_cmd
from hwkit.cli import peak_cmd
from hwkit.cli import plugins_cmd
from hwkit.cli import report_cmd
from hwkit.cli import run_cmd
from hwkit.cli import trend_cmd
from hwkit.cli.common import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, exit_code_of_signal, stderr, stdout
from hwkit.errors import HwkitError
from hwkit.runner.launch import Stopped, stop_on_signals

# The order of `hwkit --help`; one line each, so that a new command is a one-line change.
COMMANDS = [
    backends_cmd,
    plugins_cmd,
    run_cmd,
    bench_cmd,
    check_cmd,
    compare_cmd,
    history_cmd,
    trend_cmd,
    report_cmd,
    merge_cmd,
    cluster_cmd,
    peak_cmd,
    install_cmd,
]
DESCRIPTION = ("On which backend and hardware should this model run, how fast, and do the backends agree? "
               "Every installed backend runs the same ONNX graph on the same inputs.")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the help to read."""

    def error(self, message: str) -> NoReturn:
        stderr.print(f"hwkit: error: {message} (see '{self.prog} --help')", highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwkit", description=DESCRIPTION,
                     epilog="Quick start: hwkit backends; hwkit bench [MODEL]; hwkit check [MODEL]. "
                            "MODEL is an .onnx file or a built-in model: mlp, cnn (default), encoder, decoder (an LLM for --generate).")
    parser.add_argument("--version", action="version", version=f"hwkit {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hwkit`` script; returns the exit code.

    SIGTERM and SIGHUP stop a command as Ctrl-C does (``hwkit.runner.launch.stop_on_signals``);
    exit code 128 + the signal's number. A reader that closes stdout early (``| head``) ends the
    command quietly with 141, as for a process SIGPIPE ended; commands write their files before
    they print, so the files are complete.
    """
    warnings.showwarning = _one_line_warning
    try:
        with stop_on_signals():
            try:
                code = _dispatch(argv)
            finally:
                sys.stdout.flush()  # a closed pipe must show here, not as a traceback at exit
            return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt as stop:  # Ctrl-C, or Stopped (SIGTERM, SIGHUP) outside a bench
        name = stop.name if isinstance(stop, Stopped) else "SIGINT"
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            stderr.print("hwkit: interrupted" if name == "SIGINT" else f"hwkit: stopped by {name}", highlight=False)
        return exit_code_of_signal(name)


def _dispatch(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except HwkitError as e:
        stderr.print(f"hwkit: error: {e}", highlight=False, markup=False, soft_wrap=True)
        return EXIT_BAD_INPUT


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail a second time."""
    stdout.quiet = True
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's capture): nothing is flushed to a descriptor
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _one_line_warning(message: Any, category: type[Warning], *_: Any, **__: Any) -> None:
    stderr.print(f"hwkit: warning: {message}", highlight=False, markup=False, soft_wrap=True)


def _version() -> str:
    from hwkit import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
