"""Finding plugins (entry-point group ``hwkit``), loading each in its own guard, and the
resulting table of backends with their status.

One broken plugin must never take the others down: each entry point is imported (first in a
child process with a deadline, so a hang or a crash at import stays there), registered and its
hook called separately, and every failure becomes a status with a reason. Plugins load lazily:
``get(name)`` imports only the entry point called ``name``; listing imports all. Plugin code
runs with its stdout sent to stderr, so hwkit's JSON output stays valid.
Environment: ``HWKIT_LOAD_PLUGINS`` (comma list; only these are loaded; empty loads none),
``HWKIT_DISABLE_PLUGINS`` (comma list of plugins not to load; ``distribution:name`` picks one of
two distributions with the same entry-point name) and ``HWKIT_PLUGIN_IMPORT_TIMEOUT`` (seconds
for the child-process import check, default 10; 0 turns the check off).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import inspect
import os
import re
import threading
import warnings
from collections.abc import Iterable
from typing import Any, Literal

import pluggy

from hwkit import hookspecs
from hwkit.guard import PLUGIN_ERRORS, check_imports, describe, import_checks, quiet_stdout
from hwkit.backend import Backend, Device
from hwkit.errors import BackendNotFoundError, BackendUnavailableError

GROUP = "hwkit"
PluginStatus = Literal["loaded", "unavailable", "failed", "blocked"]
BackendStatus = Literal["available", "unavailable", "failed"]
_BAD_NAME = re.compile(r"[\s:,.]")  # ':' device, ',' list, '.' option separators in -b / -o
# Tested with hwkit in its own repository; the child-process import check is for everyone else's
# code and would cost every command ~0.15 s of wall time per shipped plugin.
SHIPPED = frozenset({"hwkit-onnxruntime", "hwkit-openvino", "hwkit-tensorflow", "hwkit-torch"})
_lock = threading.RLock()  # one load at a time: library users call hwkit from several threads


class PluginWarning(UserWarning):
    """A plugin failed to load or register; the others keep working."""


@dataclasses.dataclass
class PluginInfo:
    """One plugin as ``hwkit plugins`` shows it."""

    name: str
    distribution: str | None
    version: str | None
    status: PluginStatus
    reason: str = ""
    hooks: list[str] = dataclasses.field(default_factory=list)
    backends: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_Probe = tuple[BackendStatus, str, list[Device], dict[str, str]]


@dataclasses.dataclass
class BackendInfo:
    """One backend: where it comes from, whether it can run here, and on which devices."""

    name: str
    plugin: str
    distribution: str | None
    version: str | None
    backend: Backend | None
    failure: str = ""
    _probe: _Probe | None = dataclasses.field(default=None, repr=False)

    def _probed(self) -> _Probe:
        with _lock:
            if self._probe is None:
                self._probe = self._run_probe()
            return self._probe

    def _run_probe(self) -> _Probe:
        if self.backend is None:
            return "failed", self.failure, [], {}
        cls = type(self.backend).__name__
        try:
            with quiet_stdout():
                reason = self.backend.unavailable_reason()
                devices = [] if reason else self.backend.devices()
                versions = {} if reason else self.backend.versions()
        except PLUGIN_ERRORS as e:  # the contract says "never raises"; a plugin that does is broken
            return "failed", f"probing devices raised {describe(e)}", [], {}
        if not (reason is None or isinstance(reason, str)):
            return "failed", f"{cls}.unavailable_reason() must return a str or None, got {reason!r:.80}", [], {}
        if reason:
            hint = f" ({self.backend.install_hint})" if self.backend.install_hint else ""
            return "unavailable", reason + hint, [], {}
        if not (isinstance(devices, list) and all(isinstance(d, Device) for d in devices)):
            return "failed", f"{cls}.devices() must return a list of hwkit.Device, got {devices!r:.80}", [], {}
        if not (isinstance(versions, dict) and all(isinstance(v, str) for v in [*versions, *versions.values()])):
            return "failed", f"{cls}.versions() must return a dict of str to str, got {versions!r:.80}", [], {}
        if not devices:
            return "unavailable", "no usable device found", [], {}
        return "available", "", devices, versions

    @property
    def runtime(self) -> Backend:
        """The Backend instance; raises with the reason when the backend cannot run here."""
        if self.backend is None or self.status != "available":
            raise BackendUnavailableError(f"backend '{self.name}' is {self.status}: {self.reason}")
        return self.backend

    @property
    def status(self) -> BackendStatus:
        return self._probed()[0]

    @property
    def reason(self) -> str:
        return self._probed()[1]

    @property
    def devices(self) -> list[Device]:
        return self._probed()[2]

    def versions(self) -> dict[str, str]:
        return dict(self._probed()[3])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
            "devices": [dataclasses.asdict(d) for d in self.devices],
            "versions": self.versions(),
        }


class Registry:
    """The plugins and the backends they registered; entry points are imported when needed."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._plugins: dict[str, PluginInfo] = {}
        self._backends: dict[str, BackendInfo] = {}
        self._claims: dict[str, list[BackendInfo]] = {}  # backend name -> every registration
        self._pending: dict[str, importlib.metadata.EntryPoint] = {}  # found, not imported yet
        self._ambiguous: dict[str, str] = {}  # entry-point name of two distributions -> why refused

    @property
    def plugins(self) -> dict[str, PluginInfo]:
        """Every plugin (imports all not yet loaded); keyed ``distribution:name`` when ambiguous."""
        self.load_all()
        return self._plugins

    @property
    def backends(self) -> dict[str, BackendInfo]:
        """Every backend (imports all plugins not yet loaded)."""
        self.load_all()
        return self._backends

    # -- loading --------------------------------------------------------------------------

    def discover(self) -> None:
        """Read the installed entry points; no plugin code runs until a plugin is needed."""
        allow, block = _env_list("HWKIT_LOAD_PLUGINS"), _env_list("HWKIT_DISABLE_PLUGINS") or set()
        by_name: dict[str, list[importlib.metadata.EntryPoint]] = {}
        for ep in importlib.metadata.entry_points(group=GROUP):
            by_name.setdefault(ep.name, []).append(ep)
        for name, points in sorted(by_name.items()):
            kept = []
            for ep in points:
                dist, version = _dist(ep)
                key = name if len(points) == 1 else f"{dist}:{name}"
                if _listed(block, name, dist) or (allow is not None and not _listed(allow, name, dist)):
                    why = "HWKIT_DISABLE_PLUGINS" if _listed(block, name, dist) else "not in HWKIT_LOAD_PLUGINS"
                    self._plugins[key] = PluginInfo(name, dist, version, "blocked", f"blocked by {why}")
                else:
                    kept.append(ep)
            dists = sorted({_dist(ep)[0] or "?" for ep in kept})
            if len(dists) > 1:  # a second distribution squatting a name: run neither, name both
                why = (f"plugin name '{name}' is claimed by the distributions {' and '.join(dists)}; "
                       "uninstall the one you do not want, or disable it with "
                       + " or ".join(f"HWKIT_DISABLE_PLUGINS={d}:{name}" for d in dists))
                self._ambiguous[name] = why
                for i, ep in enumerate(kept):  # one warning: the reason already names every party
                    self._fail(PluginInfo(name, *_dist(ep), "failed"), why, f"{_dist(ep)[0]}:{name}", warn=i == 0)
            elif kept:
                self._pending[name] = kept[0]
        self._settle_names()

    def load_entry_points(self) -> None:
        """Find and import every installed plugin, each in its own guard."""
        self.discover()
        self.load_all()

    def load_all(self) -> None:
        with _lock:
            if self._pending:
                check_imports(_untrusted(self._pending.values()))
                for name in sorted(self._pending):
                    self._load(name)

    def _load(self, name: str) -> None:
        ep = self._pending.pop(name)
        info = PluginInfo(name, *_dist(ep), "loaded")
        crashed = import_checks.get(ep.module, "")
        if crashed:
            self._fail(info, crashed)
            return
        try:
            with quiet_stdout():
                plugin = ep.load()
        except (ImportError, OSError) as e:
            info.status, info.reason = "unavailable", f"import failed: {type(e).__name__}: {e}"
            self._plugins[name] = info
        except PLUGIN_ERRORS as e:  # a plugin's import may raise anything; report, keep going
            self._fail(info, f"import raised {describe(e)}")
        else:
            self.register(plugin, name, info)

    def register(self, plugin: object, name: str, info: PluginInfo | None = None) -> PluginInfo:
        """Register one plugin object (a module or class with hookimpls) and call its hook."""
        with _lock:
            info = info or PluginInfo(name, None, None, "loaded")
            self._plugins[name] = info
            try:
                self.pm.register(plugin, name=name)
                self.pm.check_pending()  # a misspelt hook name is an error, not silence
            except (pluggy.PluginValidationError, ValueError) as e:
                if self.pm.is_registered(plugin):
                    self.pm.unregister(plugin)
                self._fail(info, f"invalid plugin: {e}")
                return info
            info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            for impl in self.pm.hook.hwkit_register_backends.get_hookimpls():
                if impl.plugin is plugin:
                    self._call_register_hook(info, impl.function)
            self._settle_names()
            return info

    def _call_register_hook(self, info: PluginInfo, hook: Any) -> None:
        try:
            with quiet_stdout():
                classes = hook()
        except PLUGIN_ERRORS as e:  # a hook may raise anything; report, keep going
            self._fail(info, f"hwkit_register_backends raised {describe(e)}")
            return
        if not isinstance(classes, (list, tuple)):
            self._fail(info, f"hwkit_register_backends must return a list, got {type(classes).__name__}")
            return
        for cls in classes:
            problem = _class_problem(cls)
            name = getattr(cls, "name", None) if isinstance(cls, type) else None
            backend = None
            if not problem:
                try:
                    with quiet_stdout():
                        backend = cls()
                except PLUGIN_ERRORS as e:  # a constructor may raise anything; report, keep going
                    problem = f"{cls.__name__}() raised {describe(e)}"
            if problem:
                self._fail(info, problem)
            if not isinstance(name, str) or not name:  # only with a problem: it was reported
                continue
            entry = BackendInfo(name, info.name, info.distribution, info.version, backend, problem)
            info.backends.append(name)
            self._claims.setdefault(name, []).append(entry)

    def _settle_names(self) -> None:
        """Two plugins claiming one backend name: refuse both, so nobody runs the wrong one."""
        merged: dict[str, BackendInfo] = {}
        for name, entries in self._claims.items():
            if len(entries) > 1:
                owners = " and ".join(f"'{e.plugin}' ({e.distribution or 'not installed'})" for e in entries)
                why = (f"backend name '{name}' is registered by {owners}; uninstall one or block one "
                       "with HWKIT_DISABLE_PLUGINS")
                for e in entries:
                    if why not in self._plugins[e.plugin].reason:
                        self._fail(self._plugins[e.plugin], why)
                merged[name] = BackendInfo(name, entries[0].plugin, entries[0].distribution,
                                           entries[0].version, None, why)
            else:
                merged[name] = entries[0]
        for name, why in self._ambiguous.items():  # `-b name` must say why, not "no such backend"
            merged.setdefault(name, BackendInfo(name, name, None, None, None, why))
        self._backends = merged

    def _fail(self, info: PluginInfo, reason: str, key: str | None = None, warn: bool = True) -> None:
        info.status = "failed"
        info.reason = f"{info.reason}; {reason}" if info.reason else reason
        self._plugins[key or info.name] = info
        if not warn:
            return
        where = f" ({info.distribution} {info.version})" if info.distribution else ""
        hint = "" if "HWKIT_DISABLE_PLUGINS" in reason else (
            f"; fix or uninstall it, or skip it with HWKIT_DISABLE_PLUGINS={info.name}")
        warnings.warn(f"hwkit plugin '{info.name}'{where} failed: {reason}{hint}", PluginWarning, stacklevel=3)

    # -- lookup ---------------------------------------------------------------------------

    def find(self, name: str) -> BackendInfo | None:
        """The backend called ``name`` or None, importing only the plugin of that entry-point
        name, or every plugin if none has it (``registry().backends.get`` imports all)."""
        with _lock:
            if name not in self._backends and name in self._pending:
                check_imports(_untrusted([self._pending[name]]))
                self._load(name)
            return self._backends.get(name) or self.backends.get(name)

    def get(self, name: str) -> BackendInfo:
        """The backend called ``name`` (see ``find``); raise with a suggestion if unknown, or why
        if unusable."""
        info = self.find(name)
        if info is None:
            close = difflib.get_close_matches(name, list(self._backends), n=1, cutoff=0.5)
            known = ", ".join(sorted(self._backends)) or "none"
            fix = (f"did you mean '{close[0]}'?" if close
                   else f"backends come from plugins: pip install hwkit-{name} (if it exists)")
            raise BackendNotFoundError(f"no backend named '{name}'; {fix} Installed backends: {known}")
        if info.status != "available":
            raise BackendUnavailableError(f"backend '{name}' is {info.status}: {info.reason}")
        return info


def _class_problem(cls: object) -> str:
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        return f"registered {cls!r}, which is not a subclass of hwkit.Backend"
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        return f"{cls.__name__} has no 'name' (a non-empty str class attribute)"
    if _BAD_NAME.search(cls.name):
        return (f"{cls.__name__}.name {cls.name!r} could never be chosen with -b: a backend name "
                "must not contain ':', ',', '.' or whitespace")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        return f"{cls.__name__} does not implement {missing}"
    return ""


def _dist(ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    return (ep.dist.name, ep.dist.version) if ep.dist else (None, None)


def _untrusted(points: Iterable[importlib.metadata.EntryPoint]) -> list[importlib.metadata.EntryPoint]:
    return [ep for ep in points if _canon(_dist(ep)[0]) not in SHIPPED]


def _canon(name: str | None) -> str:
    return re.sub(r"[-_.]+", "-", name or "").lower()


def _listed(entries: set[str] | None, name: str, dist: str | None) -> bool:
    """Whether ``name`` (or ``distribution:name``) is in an HWKIT_*_PLUGINS list."""
    return any(e == name or (":" in e and e.rpartition(":")[2] == name and _canon(e.rpartition(":")[0]) == _canon(dist))
               for e in entries or ())


def _env_list(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


_registry: Registry | None = None


def registry() -> Registry:
    """The process-wide registry; entry points are read on first use, under a lock."""
    global _registry
    with _lock:
        if _registry is None:
            fresh = Registry()
            fresh.discover()
            _registry = fresh
        return _registry


def reset_registry(new: Registry | None = None) -> None:
    """Forget the loaded plugins (or install ``new``); the next lookup reloads them."""
    global _registry
    with _lock:
        _registry = new


def default_backends() -> list[str]:
    """Backends a run without ``-b`` uses: available, and not marked as too slow by default."""
    return [
        name for name, info in sorted(registry().backends.items())
        if info.status == "available" and info.backend is not None and info.backend.in_default_runs
    ]
