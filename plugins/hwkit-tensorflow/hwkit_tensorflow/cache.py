"""Where converted models live, and how an entry appears there without ever being half written.

The folder is hwkit's cache folder (``HWKIT_CACHE_DIR``, else the platform's user cache for
"hwkit") / "tensorflow", from ``hwkit.backend.cache_folder``.
An entry is built in a temporary folder beside it and renamed into place: rename is atomic on
one file system, so another process sees no entry or a whole one; when two build the same entry,
the first rename wins and the other discards its copy.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from hwkit.backend import cache_folder

try:
    import fcntl
except ImportError:  # Windows: no advisory lock; two processes may then both convert (still safe)
    fcntl = None  # type: ignore[assignment]


def root() -> Path:
    """The plugin's folder in hwkit's cache (``hwkit.backend.cache_folder``)."""
    return cache_folder("tensorflow")


STALE_SECONDS = 24 * 3600  # no conversion takes a day: an older scratch folder lost its process


def scratch_folder(parent: Path) -> Path:
    """A new private folder in ``parent``, to build an entry in (same file system: rename works).
    Scratch folders a killed process left behind a day ago or more are removed first."""
    now = time.time()
    for old in parent.glob(".building-*"):
        with contextlib.suppress(OSError):  # gone already, or not ours to remove: leave it
            if now - old.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(old)
    return Path(tempfile.mkdtemp(dir=parent, prefix=".building-"))


def publish_folder(built: Path, entry: Path) -> None:
    """Rename ``built`` to ``entry``; if another process published ``entry`` first, keep theirs."""
    try:
        os.rename(built, entry)
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not entry.is_dir():
            raise
        shutil.rmtree(built, ignore_errors=True)


def publish_file(built: Path, entry: Path) -> None:
    """Replace ``entry`` with ``built`` atomically (identical content, whoever wins)."""
    os.replace(built, entry)


@contextlib.contextmanager
def exclusive(entry: Path) -> Iterator[None]:
    """Held while ``entry`` is built, so that a second process waits for the first one's
    conversion instead of doing the same work (correctness does not depend on it: the rename does)."""
    if fcntl is None:
        yield
        return
    with open(entry.with_name(entry.name + ".lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
