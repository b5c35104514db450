"""What every backend's share of a run records, whatever the scenario: where it ran and how it
ended. Scenario records (``BackendResult``, ``BackendParity``) extend ``RunRecord``."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from hwkit import errors
from hwkit.errors import HwkitError
from hwkit.guard import describe

# ok: done; failed: a hwkit error or a plugin's exception; crashed: its process died;
# timeout: stopped at --timeout; interrupted: Ctrl-C; reference: the run others compare with;
# unsupported: the backend declares it cannot run the row's precision (the error says why);
# lost: its cluster node died mid-run (hwkit.fleet).
Status = Literal["ok", "failed", "crashed", "timeout", "interrupted", "reference", "unsupported", "lost"]


@dataclasses.dataclass
class RunRecord:
    """One backend's run: the target as chosen, where it ran, and how it ended."""

    backend: str  # the backend's name
    device: str = ""
    status: Status = "ok"
    error: str = ""
    error_type: str = ""  # the hwkit error's class name, so that a caller can raise it again
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    rss_before_compile: int | None = None  # bytes, the backend's own process (isolated runs)
    peak_rss: int | None = None


def record_failure(record: RunRecord, error: BaseException) -> None:
    """A backend's failure as its record's status. A non-hwkit exception is a plugin bug: its type
    is named so the plugin's author can find it."""
    record.status = "failed"
    if isinstance(error, HwkitError):
        record.error = str(error)
    elif isinstance(error, (SystemExit, KeyboardInterrupt)):  # plugin code's, never hwkit's own exit
        record.error = describe(error)
    else:
        record.error = f"{type(error).__name__}: {error}"
    record.error_type = type(error).__name__ if isinstance(error, HwkitError) else ""


def failure_error(record: RunRecord, message: str) -> HwkitError:
    """The failed record's error as a hwkit error of the recorded class (``ExecutionError`` for a
    crash, a timeout or a plugin's own exception), carrying ``message``. ``UnsupportedOpError``
    comes back as its base, ``CompileError``: its ops list stays in the message."""
    kind = getattr(errors, record.error_type, None)
    if not (isinstance(kind, type) and issubclass(kind, HwkitError)):
        return errors.ExecutionError(message)
    if issubclass(kind, errors.UnsupportedOpError):
        return errors.CompileError(message)
    return kind(message)
