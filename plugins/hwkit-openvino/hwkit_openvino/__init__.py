"""hwkit plugin: the ``openvino`` backend."""

from __future__ import annotations

from hwkit import hookimpl

from hwkit_openvino.backend import OpenVinoBackend

__all__ = ["OpenVinoBackend"]


@hookimpl
def hwkit_register_backends() -> list[type]:
    return [OpenVinoBackend]
