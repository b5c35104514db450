"""hwkit plugin: the ``reference`` backend (ONNX's ReferenceEvaluator).

hwkit imports this module through the entry point ``reference`` of the group ``hwkit`` and calls
its ``hwkit_register_backends`` hook. Keep the import cheap and free of runtime imports: it runs
for every ``hwkit`` command, even ones that never use this backend.
"""

from __future__ import annotations

from hwkit import Backend, hookimpl

from hwkit_reference.backend import ReferenceBackend

__all__ = ["ReferenceBackend"]


@hookimpl
def hwkit_register_backends() -> list[type[Backend]]:
    return [ReferenceBackend]
