"""The ``hwkit`` command. Each subcommand lives in its own module with ``add_parser`` and
``run``; this module dispatches and turns every hwkit error into one line and exit code 2."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from hwkit.cli import backends_cmd, bench_cmd, check_cmd, compare_cmd, install_cmd, peak_cmd, plugins_cmd, run_cmd
from hwkit.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, stderr
from hwkit.errors import HwkitError

COMMANDS = [backends_cmd, plugins_cmd, run_cmd, bench_cmd, check_cmd, compare_cmd, peak_cmd, install_cmd]
DESCRIPTION = ("On which backend and hardware should this model run, how fast, and do the backends agree? "
               "Every installed backend runs the same ONNX graph on the same inputs.")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the help to read."""

    def error(self, message: str) -> NoReturn:
        stderr.print(f"hwkit: error: {message} (see '{self.prog} --help')", highlight=False, markup=False)
        sys.exit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwkit", description=DESCRIPTION,
                     epilog="Quick start: hwkit backends; hwkit bench [MODEL]; hwkit check [MODEL]. "
                            "MODEL is an .onnx file or a built-in model: mlp, cnn (default), encoder.")
    parser.add_argument("--version", action="version", version=f"hwkit {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hwkit`` script; returns the exit code."""
    warnings.showwarning = _one_line_warning
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except HwkitError as e:
        stderr.print(f"hwkit: error: {e}", highlight=False, markup=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        stderr.print("hwkit: interrupted", highlight=False)
        return EXIT_INTERRUPTED


def _one_line_warning(message: Any, category: type[Warning], *_: Any, **__: Any) -> None:
    stderr.print(f"hwkit: warning: {message}", highlight=False, markup=False, soft_wrap=True)


def _version() -> str:
    from hwkit import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
