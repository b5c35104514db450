"""``hwkit cluster join ADDRESS``: this machine joins a Ray cluster through Ray's own node start
(``ray start``), offering what hwkit finds here as custom resources (``hwkit.fleet.resources``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from hwkit.errors import OptionError
from hwkit.fleet.resources import NAME_LABEL, check_name, default_name, local_resources

RAY_HINT = "pip install 'hwkit[ray]'"


def ray_executable() -> str:
    """The ``ray`` command of this Python's environment (else the one on PATH)."""
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.is_file() else shutil.which("ray")
    if not found:
        raise OptionError(f"the cluster commands need Ray, which is not installed here: {RAY_HINT}")
    return found


def start_command(address: str | None, name: str | None = None) -> list[str]:
    """The ``ray start`` command line: a worker node joining ``address``, or a head node when
    ``address`` is None."""
    label = check_name(name) if name else default_name()
    resources = local_resources()
    where = ["--head"] if address is None else ["--address", address]
    return [ray_executable(), "start", *where, "--resources", json.dumps(resources, sort_keys=True),
            "--labels", f"{NAME_LABEL}={label}"]


def start(command: list[str]) -> int:
    """Run ``ray start`` in the foreground; its exit code (its own messages say why it failed)."""
    return subprocess.run(command, check=False).returncode
