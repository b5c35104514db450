"""``hwkit install NAME`` / ``hwkit uninstall NAME``: add or remove backend plugins with pip, in
the environment hwkit itself runs in (``sys.executable -m pip``), so that the plugin lands where
hwkit will look for it, whichever ``pip`` is first on PATH.

Short names map to distributions: ``onnxruntime`` -> ``hwkit-onnxruntime``, except the backends
that share one distribution (``cpu`` and ``cuda`` both come from ``hwkit-torch``; ``tensorflow``
and ``litert`` from ``hwkit-tensorflow``). A name that already starts with ``hwkit-``, or that is
a path or URL (it contains ``/`` or ``.`` before any version specifier), is passed to pip as it is.

A distribution may need packages whose own metadata cannot be met beside its dependencies
(``NO_DEPS_REQUIREMENTS``): installing it runs a second ``pip install --no-deps`` of those exact
pins, and ``--dry-run`` prints both commands.
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
# Backends of distributions that give several: the distribution (not always hwkit-<backend>),
# and which other backends an uninstall takes with it.
_SHARED_DISTRIBUTIONS = {"cpu": "hwkit-torch", "cuda": "hwkit-torch",
                         "tensorflow": "hwkit-tensorflow", "litert": "hwkit-tensorflow"}
# Installed after a distribution, in a second pip run WITHOUT their dependencies, because their
# metadata pins versions that conflict with the distribution's own: onnx2tf 1.29.24 (which
# hwkit-tensorflow converts with) pins numpy==1.26.4, onnx==1.19.1, onnxruntime==1.23.0,
# protobuf==4.25.5, tensorflow==2.19.0 and more exactly, and tf-keras requires the full
# `tensorflow` wheel beside tensorflow-cpu. What onnx2tf really imports is in hwkit-tensorflow's
# own dependencies, and works at their newer versions. requirements-nodeps.txt holds the same pins
# for make setup; tests/cli/test_install_cmd.py keeps the two equal.
NO_DEPS_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "hwkit-tensorflow": ("onnx2tf==1.29.24", "tf-keras==2.21.0"),
}


class InstallError(PluginError):
    """pip could not install or uninstall a plugin."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    for action, verb in (("install", "install"), ("uninstall", "remove")):
        parser = sub.add_parser(action, help=f"{verb} backend plugins with pip (e.g. hwkit {action} openvino)")
        parser.add_argument("names", nargs="+", metavar="NAME",
                            help="a backend (onnxruntime -> hwkit-onnxruntime), a distribution, a path or a URL")
        parser.add_argument("--dry-run", action="store_true", help="print the pip command(s) instead of running them")
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


def project(requirement: str) -> str:
    """The normalised project name a pip requirement installs, as far as it can be told without
    pip: ``hwkit-tensorflow==0.2`` and ``plugins/hwkit-tensorflow`` -> ``hwkit-tensorflow``,
    ``dist/hwkit_tensorflow-0.1-py3-none-any.whl`` -> ``hwkit-tensorflow``; a URL's is its last part
    (``git+https://host/hwkit-tensorflow.git`` -> ``hwkit-tensorflow``)."""
    base = _SPECIFIER.split(requirement, maxsplit=1)[0].rstrip("/")
    if "/" in base or base.endswith(".whl"):
        base = base.rsplit("/", 1)[-1]
        base = base.split("-", 1)[0] if base.endswith(".whl") else base.removesuffix(".git")
    return re.sub(r"[-_.]+", "-", base).lower()


def no_deps_requirements(names: list[str]) -> list[str]:
    """The ``NO_DEPS_REQUIREMENTS`` of the distributions ``names`` install, each once."""
    found = (NO_DEPS_REQUIREMENTS.get(project(d), ()) for d in distributions(names))
    return list(dict.fromkeys(r for requirements in found for r in requirements))


def pip_commands(action: str, names: list[str], upgrade: bool = False) -> list[list[str]]:
    """Every pip command ``hwkit ACTION NAMES`` runs, in order: the plugins, then (install only)
    their ``NO_DEPS_REQUIREMENTS`` without dependencies."""
    commands = [pip_command(action, names, upgrade)]
    extra = no_deps_requirements(names) if action == "install" else []
    if extra:
        commands.append([sys.executable, "-m", "pip", "install", "--no-deps", *extra])
    return commands


def pip_command(action: str, names: list[str], upgrade: bool = False) -> list[str]:
    """The pip command line, run with the interpreter hwkit runs in."""
    command = [sys.executable, "-m", "pip", action]
    if action == "uninstall":
        command.append("--yes")  # the CLI asked already by being called; pip must not prompt
    elif upgrade:
        command.append("--upgrade")
    return command + distributions(names)


def run(args: argparse.Namespace) -> int:
    commands = pip_commands(args.action, args.names, getattr(args, "upgrade", False))
    targets = " ".join(distributions(args.names))
    also = also_removed(args.names) if args.action == "uninstall" else []
    if also:
        stderr.print(f"note: this also removes backend(s) {', '.join(also)}, from the same distribution",
                     highlight=False, markup=False)
    left = no_deps_requirements(args.names) if args.action == "uninstall" else []
    if left:
        names = [_SPECIFIER.split(r, maxsplit=1)[0] for r in left]
        stderr.print(f"note: this leaves {', '.join(names)} (installed with it, without dependencies) and "
                     f"the plugin's dependencies installed; 'pip uninstall {' '.join(names)}' removes them",
                     highlight=False, markup=False, soft_wrap=True)
    if args.dry_run:
        for command in commands:
            stdout.print(shlex.join(command), highlight=False, markup=False, soft_wrap=True)
        return 0
    _pip(commands[0], f"pip {args.action} {targets}", "check the name (hwkit backends lists the installed ones)")
    if len(commands) > 1:  # the plugins are in; what they need besides, without dependencies
        owners = [d for d in distributions(args.names) if project(d) in NO_DEPS_REQUIREMENTS]
        _pip(commands[1], " ".join(commands[1][2:]),  # "pip install --no-deps onnx2tf==... ..."
             f"{' '.join(owners)} installed, but its backends stay unavailable until these are: "
             f"run 'hwkit install {' '.join(args.names)}' again")
    done = "installed" if args.action == "install" else "uninstalled"
    stderr.print(f"{done} {targets}; 'hwkit backends' shows what can run here", highlight=False, markup=False)
    return 0


def _pip(command: list[str], what: str, fix: str) -> None:
    """Run one pip command: its progress straight to the terminal, its errors kept to name the cause."""
    result = subprocess.run(command, stderr=subprocess.PIPE, text=True)
    if result.stderr:
        sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise InstallError(f"{what} failed (exit code {result.returncode}): {_last_error(result.stderr)}; {fix}")


def _last_error(text: str) -> str:
    """pip's most telling line: its last ``ERROR:`` line, else its last line."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors or lines or ["no message from pip"])[-1][:300]
