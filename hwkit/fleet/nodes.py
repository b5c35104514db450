"""The cluster as hwkit sees it: the connection, the nodes that joined with hwkit resources,
what each one can run, and what a task's failure means for its rows. Ray is passed in (the
caller imported it), never imported here at module level."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

from hwkit.api import split_target
from hwkit.errors import BackendUnavailableError, HwkitError, OptionError
from hwkit.fleet.resources import LOCK, NAME_LABEL, default_name, local_resources, offered
from hwkit.plugins import registry

LOCAL = "local"
__all__ = ["LOCK", "Node", "alive", "connected", "registered_plugins", "targets", "why_no_rows"]


@dataclasses.dataclass(frozen=True)
class Node:
    """A live node with the hwkit lock: its Ray id, its machine name and what it offers."""

    node_id: str
    name: str
    offers: tuple[tuple[str, str, bool], ...]  # (backend, device, run by default)


@contextlib.contextmanager
def connected(ray: Any, address: str, model_bytes: int = 0) -> Iterator[None]:
    """Connected to the cluster at ``address`` for the block ("local": a throwaway cluster of
    this machine, gone afterwards). A connection the caller opened already is used as it is."""
    if ray.is_initialized():
        yield
        return
    # ray.init replaces the SIGTERM handler with one that exits at once; hwkit's own (the CLI's
    # stop_on_signals: stop, keep what was measured, write it) is put back.
    sigterm = signal.getsignal(signal.SIGTERM)
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address == LOCAL:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a throwaway cluster reports nowhere
        ray.init(resources=local_resources(), labels={NAME_LABEL: default_name()},
                 object_store_memory=max(100 * 2**20, 3 * model_bytes), include_dashboard=False, **quiet)
    else:
        refuse_unreachable(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise OptionError(f"cannot connect to the Ray cluster at {address} ({' '.join(str(e).split())[:200]}); "
                              "start one with 'hwkit cluster head' or 'ray start --head', or try --cluster local") from e
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, sigterm)
    try:
        yield
    finally:
        ray.shutdown()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm)


def refuse_unreachable(address: str, timeout: float = 5.0) -> None:
    """An OptionError at once when nothing listens at ``host:port`` (Ray itself retries for
    minutes); other address forms ("auto", "ray://…") are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in host or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise OptionError(f"no Ray cluster answers at {address} ({e.strerror or type(e).__name__}); start one with "
                          "'hwkit cluster head' (or 'ray start --head') and give the address it prints, or try "
                          "--cluster local") from e


def alive(ray: Any) -> list[Node]:
    """The live nodes that offer the hwkit lock, by machine name (a name taken twice gets the
    node id's start appended)."""
    found = []
    for info in ray.nodes():
        resources = info.get("Resources") or {}
        if not info.get("Alive") or LOCK not in resources:
            continue
        name = (info.get("Labels") or {}).get(NAME_LABEL) or info.get("NodeManagerHostname") or "node"
        found.append(Node(info["NodeID"], name, tuple(offered(resources))))
    names = [n.name for n in found]
    found = [dataclasses.replace(n, name=f"{n.name}-{n.node_id[:6]}") if names.count(n.name) > 1 else n for n in found]
    return sorted(found, key=lambda n: n.name)


def targets(node: Node, backends: Sequence[str] | None) -> list[str]:
    """The "backend:device" targets ``node`` measures: for each chosen backend (a device given or
    not) every matching device it offers; without a choice, what it runs by default."""
    if not backends:
        return [f"{b}:{d}" for b, d, default in node.offers if default]
    chosen = []
    for spec in backends:
        name, device = split_target(spec)
        chosen += [f"{b}:{d}" for b, d, _ in node.offers
                   if b == name and (device is None or d.lower() == device.lower())]
    return list(dict.fromkeys(chosen))


def check_offered(nodes: Sequence[Node], backends: Sequence[str] | None, address: str) -> None:
    """Every chosen backend runs on some node, and some node runs something; else one
    BackendUnavailableError that says what the nodes offer, before anything runs."""
    offers = "; ".join(f"{n.name}: {', '.join(f'{b}:{d}' for b, d, _ in n.offers) or 'nothing'}" for n in nodes)
    if not nodes:
        raise BackendUnavailableError(f"no machine of the Ray cluster at {address} offers hwkit backends; join each "
                                      f"machine with 'hwkit cluster join {address}'")
    for spec in backends or []:
        if not any(targets(node, [spec]) for node in nodes):
            raise BackendUnavailableError(f"no machine of the Ray cluster offers {spec} (machines: {offers}); join a "
                                          "machine that has it with 'hwkit cluster join ADDRESS'")
    if not any(targets(node, backends) for node in nodes):
        raise BackendUnavailableError(f"no machine of the Ray cluster runs a backend by default (machines: {offers}); "
                                      "choose backends with -b")


def registered_plugins() -> list[tuple[str, str]]:
    """(plugin name, module) of each plugin registered in this process rather than installed
    (``registry().register``), which the nodes import and register too."""
    found = {}
    current = registry()
    for info in current.backends.values():
        plugin = current.pm.get_plugin(info.plugin)
        if info.distribution is None and isinstance(plugin, ModuleType) and plugin.__name__ != "__main__":
            found[info.plugin] = plugin.__name__
    return sorted(found.items())


def why_no_rows(ray: Any, error: BaseException) -> tuple[str, str]:
    """(status, error) of the rows of a task that ended with ``error``: failed when the task
    itself raised (a hwkit error on the node), interrupted when cancelled, else lost (the node
    or its worker went away)."""
    if isinstance(error, ray.exceptions.TaskCancelledError):
        return "interrupted", "not measured: the run was stopped"
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        if isinstance(cause, HwkitError):
            return "failed", str(cause)
        text = f"{type(cause).__name__}: {cause}" if cause is not None else str(error).strip().splitlines()[0]
        return "failed", text
    first = " ".join(str(error).split()).split(". ")[0][:200]  # Ray's first sentence; the rest is advice on its own setup
    return "lost", f"the machine left the cluster before its rows were measured ({type(error).__name__}: {first})"
