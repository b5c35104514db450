"""``hwkit install NAME`` / ``hwkit uninstall NAME``: add or remove backend plugins with pip, in
the environment hwkit itself runs in (``sys.executable -m pip``), so that the plugin lands where
hwkit will look for it, whichever ``pip`` is first on PATH.

Short names map to distributions: ``onnxruntime`` -> ``hwkit-onnxruntime``. A name that already
starts with ``hwkit-``, or that is a path or URL (it contains ``/`` or ``.`` before any version
specifier), is passed to pip as it is.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys

from hwkit.cli.common import stderr, stdout
from hwkit.errors import PluginError

# Where the requirement's name ends and a version specifier or extras begin.
_SPECIFIER = re.compile(r"[\[<>=!~;@ ]")


class InstallError(PluginError):
    """pip could not install or uninstall a plugin."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    for action, verb in (("install", "install"), ("uninstall", "remove")):
        parser = sub.add_parser(action, help=f"{verb} backend plugins with pip (e.g. hwkit {action} openvino)")
        parser.add_argument("names", nargs="+", metavar="NAME",
                            help="a backend (onnxruntime -> hwkit-onnxruntime), a distribution, a path or a URL")
        parser.add_argument("--dry-run", action="store_true", help="print the pip command instead of running it")
        if action == "install":
            parser.add_argument("-U", "--upgrade", action="store_true", help="upgrade if already installed")
        parser.set_defaults(handler=run, action=action)


def distribution(name: str) -> str:
    """The pip requirement for a user's NAME: ``openvino`` -> ``hwkit-openvino``,
    ``openvino==0.2`` -> ``hwkit-openvino==0.2``; hwkit-*, paths and URLs unchanged."""
    base = _SPECIFIER.split(name, maxsplit=1)[0]
    if not base or base.lower().startswith("hwkit-") or "/" in base or "." in base or base.lower() == "hwkit":
        return name
    return "hwkit-" + name


def pip_command(action: str, names: list[str], upgrade: bool = False) -> list[str]:
    """The pip command line, run with the interpreter hwkit runs in."""
    command = [sys.executable, "-m", "pip", action]
    if action == "uninstall":
        command.append("--yes")  # the CLI asked already by being called; pip must not prompt
    elif upgrade:
        command.append("--upgrade")
    return command + [distribution(n) for n in names]


def run(args: argparse.Namespace) -> int:
    command = pip_command(args.action, args.names, getattr(args, "upgrade", False))
    targets = " ".join(distribution(n) for n in args.names)
    if args.dry_run:
        stdout.print(shlex.join(command), highlight=False, markup=False, soft_wrap=True)
        return 0
    # pip's progress goes straight to the terminal; its errors are kept to name the cause.
    result = subprocess.run(command, stderr=subprocess.PIPE, text=True)
    if result.stderr:
        sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise InstallError(
            f"pip {args.action} {targets} failed (exit code {result.returncode}): "
            f"{_last_error(result.stderr)}; check the name (hwkit backends lists the installed ones)"
        )
    done = "installed" if args.action == "install" else "uninstalled"
    stderr.print(f"{done} {targets}; 'hwkit backends' shows what can run here", highlight=False)
    return 0


def _last_error(text: str) -> str:
    """pip's most telling line: its last ``ERROR:`` line, else its last line."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors or lines or ["no message from pip"])[-1][:300]
