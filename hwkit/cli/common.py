"""Argument parsing shared by the subcommands, and the two consoles."""

from __future__ import annotations

import argparse
import errno
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from hwkit.errors import HwkitError, OptionError
from hwkit.model import Model
from hwkit.runner.validate import check_number
from hwkit.model.zoo import DEFAULT_MODEL
from hwkit.parity.tolerance import TOLERANCES
from hwkit.runner.plan import DEFAULT_REFERENCE
from hwkit.runner.sweep import parse_precisions



class _Console(Console):
    """rich's Console, but a closed pipe is left to ``hwkit.cli.main`` (rich would exit with 1
    on the spot, before any result file of the command is written)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the reader of this output closed it")


stdout = _Console()
stderr = _Console(stderr=True)
EXIT_MISMATCH = 1  # check: the backends disagree beyond the tolerance
EXIT_BAD_INPUT = 2  # a hwkit error: bad input, or a backend that failed (after writing every result)
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141: stdout's reader left (| head), as shells report it


def whole(minimum: int) -> Any:
    """An argparse type: a whole number >= ``minimum`` (a usage error, one line, otherwise)."""
    return _checked(minimum, True)


def seconds(minimum: float = 0) -> Any:
    """An argparse type: a finite number >= ``minimum`` (no nan, no inf)."""
    return _checked(minimum, False)


def _checked(minimum: float, is_whole: bool) -> Any:
    def parse(text: str) -> int | float:
        value: int | float = int(text) if is_whole else float(text)  # ValueError: argparse's "invalid int value"
        try:
            check_number("the value", value, minimum, whole=is_whole)
        except OptionError:
            kind = "a whole number" if is_whole else "a finite number"
            raise argparse.ArgumentTypeError(f"must be {kind} >= {minimum:g}; got '{text}'") from None
        return value
    parse.__name__ = "int" if is_whole else "float"  # argparse names the type by it
    return parse


def exit_code_of_signal(name: str) -> int:
    """128 + the signal's number ("SIGTERM" -> 143): what a shell reports for a process it ended."""
    return 128 + int(signal.Signals[name])


def backend_error(target: str, error: str) -> str:
    """``target: error``, without saying the backend's name twice when the error starts with it
    (plugins often write "cpu: conversion failed ...") or already names it ("backend 'cpu' ...")."""
    name = target.partition(":")[0]
    if error.startswith(f"{target}:") or (target == name and f"backend '{name}'" in error):
        return error
    if error.startswith(f"{name}:"):  # "openvino: ..." of target openvino:GPU keeps the device
        return f"{target}:{error[len(name) + 1:]}"
    return f"{target}: {error}"


def input_files(model: Model, *others: str | None) -> list[Path | str | None]:
    """The files a run reads (the model's, its external data, ``others`` such as --inputs): an
    output path may be none of them (``hwkit._files.check_writable``)."""
    return [model.path, *model.external_files, *others]


def add_run_arguments(parser: argparse.ArgumentParser, threads_default: str, reference: str) -> None:
    """MODEL, -b, --reference, --threads, --precision, -o and the input flags: what every command
    over several backends takes."""
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                        help=f"an .onnx file or a built-in model (default: {DEFAULT_MODEL})")
    parser.add_argument("-b", "--backends", help="comma list of BACKEND[:DEVICE] (default: every available one)")
    parser.add_argument("--reference", help=f"the backend whose outputs the others are compared with (default: "
                        f"{DEFAULT_REFERENCE} if available, {reference}; else the first chosen)")
    parser.add_argument("--threads", type=whole(1), help=f"intra-op threads for every backend (default: {threads_default})")
    parser.add_argument("--precision", type=precision_list, default=("fp32",), metavar="P[,P…]",
                        help=f"precisions every backend runs, one row each ({', '.join(TOLERANCES)}; default fp32); "
                        "each row is judged by its precision's tolerance profile; docs/precision.md")
    parser.add_argument("--calibration", metavar="FILE.npz",
                        help="int8: calibrate the quantiser on these inputs instead of seeded ones")
    parser.add_argument("-o", "--option", action="append", default=[], metavar="BACKEND.NAME=VALUE",
                        help="a backend option, e.g. openvino.hint=throughput (repeatable)")
    add_model_arguments(parser)


def precision_list(text: str) -> tuple[str, ...]:
    """An argparse type: a comma list of precisions; an unknown one is a usage error listing the valid ones."""
    try:
        return parse_precisions(text)
    except OptionError as e:
        bad = next((p.strip() for p in text.split(",") if p.strip().lower() not in TOLERANCES), text)
        raise argparse.ArgumentTypeError(f"invalid choice: '{bad}'; {str(e).partition('; ')[2]}") from None


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--shape, --dim, --seed: how inputs are generated."""
    parser.add_argument("--shape", action="append", default=[], metavar="NAME=AxBxC",
                        help="fix an input's shape, e.g. x=1x3x224x224 (repeatable)")
    parser.add_argument("--dim", action="append", default=[], metavar="NAME=N",
                        help="fix a symbolic dimension everywhere, e.g. batch=8 (repeatable)")
    parser.add_argument("--seed", type=whole(0), default=0, help="seed of the generated inputs (default 0)")


def parse_shapes(values: Sequence[str]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, sep, dims = value.partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().replace(",", "x").split("x")) if dims else ()
        except ValueError:
            shape = (-1,)
        if not sep or not name or any(d < 0 for d in shape):
            raise OptionError(f"--shape takes NAME=AxBxC with whole sizes, e.g. x=1x3x224x224; got '{value}'")
        shapes[name.strip()] = shape
    return shapes


def parse_sizes(value: str | None, flag: str, example: str) -> tuple[int, ...] | None:
    """A comma list of whole sizes >= 1 (``--batch 1,8,32``), or None when not given."""
    if not value:
        return None
    try:
        sizes = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(size < 1 for size in sizes):
        raise OptionError(f"{flag} takes whole sizes >= 1 separated by commas, e.g. {flag} {example}; got '{value}'")
    return sizes


def parse_dims(values: Sequence[str]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for value in values:
        name, sep, size = value.partition("=")
        if not sep or not name or not size.strip().isdigit():
            raise OptionError(f"--dim takes NAME=N with a whole size, e.g. batch=8; got '{value}'")
        dims[name.strip()] = int(size)
    return dims


def parse_options(values: Sequence[str], per_backend: bool) -> Any:
    """-o key=value (one backend) or -o backend.key=value (several), values kept as strings."""
    flat: dict[str, str] = {}
    nested: dict[str, dict[str, str]] = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key:
            form = "BACKEND.NAME=VALUE" if per_backend else "NAME=VALUE"
            raise OptionError(f"-o takes {form}, e.g. {'onnxruntime.' if per_backend else ''}threads=2; got '{value}'")
        if per_backend:
            backend, dot, name = key.partition(".")
            if not dot or not name:
                raise OptionError(f"-o takes BACKEND.NAME=VALUE here, e.g. openvino.precision=fp16; got '{value}'")
            nested.setdefault(backend, {})[name] = setting
        else:
            flat[key] = setting
    return nested if per_backend else flat


def split_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def print_whole(table: Any) -> None:
    """Print at the table's natural width when the terminal (or a pipe's default 80 columns) is
    narrower: a wrapped line is still readable, a number cut to '2.38e-0' is wrong."""
    needed = min(stdout.measure(table, options=stdout.options.update(max_width=200)).maximum, 200)
    if needed <= stdout.width:
        stdout.print(table)
        return
    terminal = stdout.width  # Console.print(width=) cannot exceed the console's width: widen it
    stdout.width = needed
    try:
        stdout.print(table)
    finally:
        stdout.width = terminal


def write_files(writers: Mapping[str, Callable[[str], object]], outputs: Mapping[str, str]) -> list[HwkitError]:
    """Write every requested file (``outputs``: kind → path) with its writer, before anything is
    printed, so that a reader closing stdout early (| head) loses none. One file that cannot be
    written costs neither the others nor the table: its error is returned, for the end."""
    unwritten: list[HwkitError] = []
    for kind, path in outputs.items():
        try:
            writers[kind](path)
        except HwkitError as e:
            unwritten.append(e)
            continue
        stderr.print(f"wrote {path}", highlight=False, markup=False)
    return unwritten


def print_errors(errors: Iterable[HwkitError | str]) -> None:
    for error in errors:
        stderr.print(f"hwkit: error: {error}", highlight=False, markup=False, soft_wrap=True)


def check_exit_code(passed: bool, mismatches: Iterable[str], failed: Sequence[Any]) -> int:
    """The end of a check: each mismatch and each backend that did not run, one line each; exit 2
    when a backend did not run (it has no outputs to disagree), else 1 unless it passed."""
    for line in mismatches:
        stderr.print(f"hwkit: mismatch: {line}", highlight=False, markup=False, soft_wrap=True)
    print_errors(backend_error(record.backend, record.error) for record in failed)
    if failed:
        return EXIT_BAD_INPUT
    return 0 if passed else EXIT_MISMATCH


def require_matplotlib(what: str = "--plot") -> None:
    """Fail before measuring, not after, when ``what`` will need matplotlib (an optional extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise OptionError(f"{what} needs matplotlib: pip install 'hwkit[plot]'") from e

