"""``hwkit install NAME`` / ``hwkit uninstall NAME``: add or remove backend plugins with pip, in
the environment hwkit itself runs in (``sys.executable -m pip``), so that the plugin lands where
hwkit will look for it, whichever ``pip`` is first on PATH.

Short names map to distributions: ``onnxruntime`` -> ``hwkit-onnxruntime``, except the backends
that share one distribution (``cpu`` and ``cuda`` both come from ``hwkit-torch``). A name that
already starts with ``hwkit-``, or that is a path or URL (it contains ``/`` or ``.`` before any
version specifier), is passed to pip as it is.
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
# Backends whose distribution is not hwkit-<backend>: one distribution gives several backends.
_SHARED_DISTRIBUTIONS = {"cpu": "hwkit-torch", "cuda": "hwkit-torch"}


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
    ``openvino==0.2`` -> ``hwkit-openvino==0.2``, ``cuda`` -> ``hwkit-torch``; hwkit-*, paths
    and URLs unchanged."""
    base = _SPECIFIER.split(name, maxsplit=1)[0]
    if not base or base.lower().startswith("hwkit-") or "/" in base or "." in base or base.lower() == "hwkit":
        return name
    shared = _SHARED_DISTRIBUTIONS.get(base.lower())
    if shared:
        return shared + name[len(base):]
    return "hwkit-" + name


def distributions(names: list[str]) -> list[str]:
    """``distribution`` of each name, each requirement once (``cpu cuda`` -> ``hwkit-torch``)."""
    return list(dict.fromkeys(distribution(n) for n in names))


def also_removed(names: list[str]) -> list[str]:
    """Backends not named that uninstalling ``names`` removes too: they share a distribution."""
    named = {_SPECIFIER.split(n, maxsplit=1)[0].lower() for n in names}
    dists = {_SHARED_DISTRIBUTIONS[b] for b in named if b in _SHARED_DISTRIBUTIONS} | named
    return sorted(b for b, d in _SHARED_DISTRIBUTIONS.items() if d in dists and b not in named)


def pip_command(action: str, names: list[str], upgrade: bool = False) -> list[str]:
    """The pip command line, run with the interpreter hwkit runs in."""
    command = [sys.executable, "-m", "pip", action]
    if action == "uninstall":
        command.append("--yes")  # the CLI asked already by being called; pip must not prompt
    elif upgrade:
        command.append("--upgrade")
    return command + distributions(names)


def run(args: argparse.Namespace) -> int:
    command = pip_command(args.action, args.names, getattr(args, "upgrade", False))
    targets = " ".join(distributions(args.names))
    also = also_removed(args.names) if args.action == "uninstall" else []
    if also:
        stderr.print(f"note: this also removes backend(s) {', '.join(also)}, from the same distribution",
                     highlight=False, markup=False)
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
    stderr.print(f"{done} {targets}; 'hwkit backends' shows what can run here", highlight=False, markup=False)
    return 0


def _last_error(text: str) -> str:
    """pip's most telling line: its last ``ERROR:`` line, else its last line."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors or lines or ["no message from pip"])[-1][:300]
