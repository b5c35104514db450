"""The one error hierarchy of hwkit.

Every problem a user can cause or meet is one of these; the CLI prints ``str(error)`` on one
line and exits with code 2. Backends map their SDK's exceptions onto them in one place and
chain with ``raise ... from e`` so the original stays available for debugging.

::

    HwkitError
    ├── BackendNotFoundError      no backend of that name (did you mean …? install hint)
    ├── BackendUnavailableError   installed, but its SDK, driver or device is missing
    ├── PluginError               a plugin failed to load or registered something invalid
    ├── OptionError               an unknown option, or a value it cannot take
    ├── ModelError                unreadable or invalid model, or inputs that do not fit it
    │   └── InputMemoryError      ... or a run's inputs and outputs too large for the memory here
    ├── CompileError              a backend could not compile the graph
    │   └── UnsupportedOpError    ... because it lacks some ops (all of them listed)
    ├── ExecutionError            a compiled graph failed while running
    │   └── BackendOutputError    ... or returned outputs unlike the model's declared outputs
    ├── OutputError               a result file cannot be written
    └── ResultError               a result file cannot be read, or is not a hwkit result
"""

from __future__ import annotations

from collections.abc import Iterable


class HwkitError(Exception):
    """Base of every error hwkit raises on purpose."""


class BackendNotFoundError(HwkitError):
    """No installed backend has the requested name."""


class BackendUnavailableError(HwkitError):
    """The backend is installed but cannot run here (SDK, driver or device missing)."""


class PluginError(HwkitError):
    """A plugin could not be loaded or registered something invalid."""


class OptionError(HwkitError):
    """An option is unknown to the backend or has a value it cannot take."""


class ModelError(HwkitError):
    """The model cannot be read or validated, or inputs do not fit its signature."""


class InputMemoryError(ModelError):
    """A run's inputs (every input set), outputs and intermediates would not fit in the memory
    available; raised before anything is allocated.

    A ModelError, so ``except ModelError`` still catches it; its own class lets a caller that
    sweeps sizes tell "too large here" from "wrong for this model".

    Attributes:
        needed: the bytes the run would take at least (what hwkit could size of it).
        available: the bytes of memory available when it was checked.
    """

    def __init__(self, message: str, needed: int = 0, available: int = 0) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available

    def __reduce__(self) -> tuple[type[InputMemoryError], tuple[str, int, int]]:
        return type(self), (str(self), self.needed, self.available)


class CompileError(HwkitError):
    """A backend failed to compile the model."""


class UnsupportedOpError(CompileError):
    """A backend does not support some ops of the graph.

    Attributes:
        backend: the backend's name.
        ops: op type -> names of the nodes that use it.
    """

    def __init__(self, backend: str, ops: dict[str, list[str]]) -> None:
        self.backend = backend
        self.ops = {op: list(nodes) for op, nodes in sorted(ops.items())}
        listing = "; ".join(f"{op} (nodes: {_shorten(nodes)})" for op, nodes in self.ops.items())
        super().__init__(
            f"backend '{backend}' does not support {len(self.ops)} op type(s) of this graph: "
            f"{listing}. Try another backend (hwkit backends) or re-export without these ops."
        )

    def __reduce__(self) -> tuple[type[UnsupportedOpError], tuple[str, dict[str, list[str]]]]:
        # Rebuilt from (backend, ops), not from the message: it crosses process boundaries.
        return type(self), (self.backend, self.ops)


class ExecutionError(HwkitError):
    """A compiled model failed while running."""


class BackendOutputError(ExecutionError):
    """A backend's ``execute`` returned outputs that do not match the model's declared outputs:
    a name missing or extra, a value that is not an array (a list where a tensor is declared,
    None where the output is not optional), or a dtype, rank or size the model does not declare.

    A bug in the backend's plugin, not in the caller's input. Not ``OutputError``, which is about
    result files hwkit cannot write; an ``ExecutionError``, so ``except ExecutionError`` still
    catches it.
    """


class OutputError(HwkitError):
    """A result file cannot be written."""


class ResultError(HwkitError):
    """A saved result cannot be read, or is not the kind of hwkit result expected."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name if it has none), cut to
    ``limit`` characters: how hwkit quotes an SDK's error in its own one-line messages."""
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:limit]


def _shorten(names: Iterable[str], limit: int = 3) -> str:
    names = [n or "<unnamed>" for n in names]
    shown = ", ".join(names[:limit])
    return shown + (f", +{len(names) - limit} more" if len(names) > limit else "")
