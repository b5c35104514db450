"""How a Ray node says what hwkit can measure there: custom resources and one label.

- ``hwkit.machine``: 1 on every node. Every measuring task takes it whole, so Ray's scheduler
  itself keeps two measurements off one machine at the same time (the no-sharing rule).
- ``hwkit:BACKEND:DEVICE``: 1 per backend and device available on the node and run by default
  (``hwkit backends``); ``hwkit-chosen:BACKEND:DEVICE`` for one run only when named with ``-b``
  (as a local bench leaves such backends out unless chosen).
- the label ``hwkit.name``: the machine's name in result tables (default: the host name).

No Ray import here: these are plain names, shared by ``hwkit cluster join`` and the scheduler.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping

from hwkit.api import backends
from hwkit.errors import OptionError

LOCK = "hwkit.machine"
DEFAULT_PREFIX = "hwkit:"
CHOSEN_PREFIX = "hwkit-chosen:"
NAME_LABEL = "hwkit.name"
# Ray's label values: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit.
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def local_resources() -> dict[str, float]:
    """The resources this machine offers: the lock, and one per available backend and device."""
    found: dict[str, float] = {LOCK: 1.0}
    for info in backends():
        if info.status != "available" or info.backend is None:
            continue
        prefix = DEFAULT_PREFIX if info.backend.in_default_runs else CHOSEN_PREFIX
        for device in info.devices:
            found[f"{prefix}{info.name}:{device.name}"] = 1.0
    return found


def offered(resources: Mapping[str, float]) -> list[tuple[str, str, bool]]:
    """(backend, device, run by default) for each hwkit resource of a node, in name order."""
    pairs = []
    for key in sorted(resources):
        for prefix, default in ((DEFAULT_PREFIX, True), (CHOSEN_PREFIX, False)):
            if key.startswith(prefix):
                backend, _, device = key[len(prefix):].partition(":")
                pairs.append((backend, device, default))
    return pairs


def default_name() -> str:
    """This machine's name for the label: its host name, shortened to what a label may hold."""
    host = socket.gethostname().split(".")[0]
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", host).strip("-._")[:63]
    return cleaned or "machine"


def check_name(name: str) -> str:
    """``name`` when Ray can hold it as a label value; an OptionError naming the rule otherwise."""
    if not _NAME.match(name):
        raise OptionError(f"--name '{name}' cannot be a Ray node label: use up to 63 letters, digits, '-', '_' or '.', "
                          "starting and ending with a letter or digit")
    return name
