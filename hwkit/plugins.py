"""Finding plugins (entry-point group ``hwkit``), loading each in its own guard, and the
resulting table of backends with their status.

One broken plugin must never take the others down: each entry point is imported, registered
and its hook called separately, and every failure becomes a status with a reason.
Environment: ``HWKIT_LOAD_PLUGINS`` (comma list; only these are loaded; empty loads none) and
``HWKIT_DISABLE_PLUGINS`` (comma list of plugins not to load).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import inspect
import os
import warnings
from typing import Any, Literal

import pluggy

from hwkit import hookspecs
from hwkit.backend import Backend, Device
from hwkit.errors import BackendNotFoundError, BackendUnavailableError

GROUP = "hwkit"
PluginStatus = Literal["loaded", "unavailable", "failed", "blocked"]
BackendStatus = Literal["available", "unavailable", "failed"]


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


@dataclasses.dataclass
class BackendInfo:
    """One backend: where it comes from, whether it can run here, and on which devices."""

    name: str
    plugin: str
    distribution: str | None
    version: str | None
    backend: Backend | None
    failure: str = ""
    _probe: tuple[BackendStatus, str, list[Device]] | None = dataclasses.field(default=None, repr=False)

    def _probed(self) -> tuple[BackendStatus, str, list[Device]]:
        if self._probe is None:
            self._probe = self._run_probe()
        return self._probe

    def _run_probe(self) -> tuple[BackendStatus, str, list[Device]]:
        if self.backend is None:
            return "failed", self.failure, []
        try:
            reason = self.backend.unavailable_reason()
            devices = [] if reason else list(self.backend.devices())
        except Exception as e:  # the contract says "never raises"; a plugin that does is broken
            return "failed", f"probing devices raised {type(e).__name__}: {e}", []
        if reason:
            hint = f" ({self.backend.install_hint})" if self.backend.install_hint else ""
            return "unavailable", reason + hint, []
        if not devices:
            return "unavailable", "no usable device found", []
        return "available", "", devices

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
        if self.backend is None or self.status != "available":
            return {}
        return dict(self.backend.versions())

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
    """The loaded plugins and the backends they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.backends: dict[str, BackendInfo] = {}
        self._claims: dict[str, list[BackendInfo]] = {}  # backend name -> every registration

    # -- loading --------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Import and register every installed plugin, each in its own guard."""
        allow = _env_list("HWKIT_LOAD_PLUGINS")
        block = _env_list("HWKIT_DISABLE_PLUGINS") or set()
        points = sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name)
        for ep in points:
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            if ep.name in self.plugins:
                self._fail(PluginInfo(ep.name, dist, version, "failed"),
                           f"another installed plugin is also named '{ep.name}'; uninstall one")
                continue
            if (allow is not None and ep.name not in allow) or ep.name in block:
                why = "HWKIT_DISABLE_PLUGINS" if ep.name in block else "not in HWKIT_LOAD_PLUGINS"
                self.plugins[ep.name] = PluginInfo(ep.name, dist, version, "blocked", f"blocked by {why}")
                continue
            info = PluginInfo(ep.name, dist, version, "loaded")
            try:
                plugin = ep.load()
            except (ImportError, OSError) as e:
                info.status, info.reason = "unavailable", f"import failed: {type(e).__name__}: {e}"
                self.plugins[ep.name] = info
                continue
            except Exception as e:  # a plugin's import may raise anything; report, keep going
                self._fail(info, f"import raised {type(e).__name__}: {e}")
                continue
            self.register(plugin, ep.name, info)

    def register(self, plugin: object, name: str, info: PluginInfo | None = None) -> PluginInfo:
        """Register one plugin object (a module or class with hookimpls) and call its hook."""
        info = info or PluginInfo(name, None, None, "loaded")
        self.plugins[name] = info
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
            classes = hook()
        except Exception as e:  # a hook may raise anything; report, keep going
            self._fail(info, f"hwkit_register_backends raised {type(e).__name__}: {e}")
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
                    backend = cls()
                except Exception as e:  # a constructor may raise anything; report, keep going
                    problem = f"{cls.__name__}() raised {type(e).__name__}: {e}"
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
                    if why not in self.plugins[e.plugin].reason:
                        self._fail(self.plugins[e.plugin], why)
                merged[name] = BackendInfo(name, entries[0].plugin, entries[0].distribution,
                                           entries[0].version, None, why)
            else:
                merged[name] = entries[0]
        self.backends = merged

    def _fail(self, info: PluginInfo, reason: str) -> None:
        info.status = "failed"
        info.reason = f"{info.reason}; {reason}" if info.reason else reason
        self.plugins[info.name] = info
        where = f" ({info.distribution} {info.version})" if info.distribution else ""
        hint = "" if "HWKIT_DISABLE_PLUGINS" in reason else (
            f"; fix or uninstall it, or skip it with HWKIT_DISABLE_PLUGINS={info.name}")
        warnings.warn(f"hwkit plugin '{info.name}'{where} failed: {reason}{hint}", PluginWarning, stacklevel=3)

    # -- lookup ---------------------------------------------------------------------------

    def get(self, name: str) -> BackendInfo:
        """The backend called ``name``; raise with a suggestion if unknown, or why if unusable."""
        info = self.backends.get(name)
        if info is None:
            close = difflib.get_close_matches(name, list(self.backends), n=1, cutoff=0.5)
            known = ", ".join(sorted(self.backends)) or "none"
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
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        return f"{cls.__name__} does not implement {missing}"
    return ""


def _env_list(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


_registry: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
        _registry.load_entry_points()
    return _registry


def reset_registry(new: Registry | None = None) -> None:
    """Forget the loaded plugins (or install ``new``); the next lookup reloads them."""
    global _registry
    _registry = new


def default_backends() -> list[str]:
    """Backends a run without ``-b`` uses: available, and not marked as too slow by default."""
    return [
        name for name, info in sorted(registry().backends.items())
        if info.status == "available" and info.backend is not None and info.backend.in_default_runs
    ]
