"""The hooks a hwkit plugin can implement. Plugins are found through the entry-point group
``hwkit``; the built-in backends are plugins registered the same way as third-party ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from hwkit.backend import Backend

hookspec = pluggy.HookspecMarker("hwkit")
hookimpl = pluggy.HookimplMarker("hwkit")


@hookspec
def hwkit_register_backends() -> list[type[Backend]]:
    """Return the Backend subclasses this plugin provides (an empty list is fine)."""
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations
