"""Where hwkit keeps files between runs, and how it writes files: atomically (a crash never
half-writes one) and, for JSON, strictly (one rule for NaN and Infinity).

The cache holds derived data only, so it heals: every entry has a checksum beside it
(``NAME.sha256``, in ``sha256sum`` format), and an entry that is missing its checksum, does not
match it, or fails its owner's check is rebuilt with one warning (``cached``). A cache folder that
cannot be used is replaced for the process by a temporary one, also with one warning.

May import: ``hwkit.errors`` only.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import math
import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import platformdirs

from hwkit.errors import OutputError

Validate = Callable[[bytes], str | None]  # an entry's bytes -> why they are unusable, or None


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: put it back at once
    os.umask(mask)
    return mask


_UMASK = _read_umask()


_usable: set[Path] = set()  # cache folders already probed in this process
_warned: set[Path] = set()  # unusable cache roots already warned about in this process


def cache_dir(*parts: str) -> Path:
    """The user cache folder (``HWKIT_CACHE_DIR`` overrides it), created on demand.

    When it cannot be used (the path is a file, under a file, or read-only), a temporary folder
    stands in for the rest of the process, with one warning: a cache is not worth failing for
    (only when no temporary folder can be made either, an ``OutputError`` says so).
    """
    root = Path(os.environ.get("HWKIT_CACHE_DIR") or platformdirs.user_cache_dir("hwkit"))
    path = root.joinpath(*parts)
    if path in _usable:
        return path
    problem = unwritable(path, create=True)
    if problem is None:
        _usable.add(path)
        return path
    temporary = _temporary_root(f"cache folder {path} cannot be used ({problem})")
    fallback = temporary.joinpath(*parts)
    fallback.mkdir(parents=True, exist_ok=True)
    if root not in _warned:
        _warned.add(root)
        warnings.warn(
            f"cache folder {path} cannot be used ({problem}); caching in {temporary} until this run "
            "ends; set HWKIT_CACHE_DIR to a writable folder", stacklevel=2,
        )
    return fallback


def unwritable(folder: Path, create: bool = False) -> str | None:
    """Why no file can be created in ``folder`` (first made, with ``create``), or None."""
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        # Writing is the only honest test: permission bits, ACLs, read-only mounts and root differ.
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hwkit-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return e.strerror or str(e)
    return None


def _temporary_root(why: str) -> Path:
    """This process's stand-in cache folder, used because of ``why`` (named in the error when
    there is none either)."""
    try:
        return _temporary_folder()
    except OSError as e:
        raise OutputError(
            f"{why}, and no temporary folder can be made in {tempfile.gettempdir()} either "
            f"({e.strerror or e}); set HWKIT_CACHE_DIR to a writable folder"
        ) from e


@functools.cache
def _temporary_folder() -> Path:
    """Private (0700), unpredictable, made once per process and removed at its exit."""
    folder = Path(tempfile.mkdtemp(prefix="hwkit-cache-"))
    atexit.register(shutil.rmtree, folder, True)  # ignore_errors: a child may still hold a file
    return folder


def cached(path: str | os.PathLike[str], build: Callable[[], bytes], validate: Validate | None = None) -> Path:
    """The path of an intact cache entry: the one at ``path``, else ``build()``'s bytes written
    there (with their checksum). Returns where the entry is: a temporary folder, with a warning,
    when ``path`` cannot be written."""
    if read_cached(path, validate) is not None:
        return Path(path)
    return write_cached(path, build())


def read_cached(path: str | os.PathLike[str], validate: Validate | None = None) -> bytes | None:
    """The bytes of the cache entry at ``path``, or None when there is none or it is unusable
    (unreadable, no checksum, a checksum that does not match, or refused by ``validate``: each
    said in one warning; the caller rebuilds it)."""
    entry = Path(path)
    try:
        if not stat.S_ISREG(entry.stat().st_mode):  # a FIFO or /dev/zero would block or never end
            _rebuilding(entry, "is not a regular file")
            return None
        data = entry.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        _rebuilding(entry, f"cannot be read ({e.strerror or e})")
        return None
    problem = _problem(entry, data, validate)
    if problem:
        _rebuilding(entry, problem)
        return None
    return data


def _problem(entry: Path, data: bytes, validate: Validate | None) -> str | None:
    recorded = _recorded_checksum(_checksum_path(entry))
    if recorded is None:
        return "has no readable checksum beside it"
    if recorded != hashlib.sha256(data).hexdigest():
        return "is corrupt or truncated (it does not match its checksum)"
    problem = validate(data) if validate else None
    return f"is not the entry expected ({problem})" if problem else None


def write_cached(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write a cache entry and its checksum, each atomically; returns where the entry went: a
    temporary folder, with a warning, when ``path`` cannot be written (say, a folder is there)."""
    entry = Path(path)
    try:
        _write_entry(entry, data)
    except OutputError as e:
        cause = e.__cause__.strerror if isinstance(e.__cause__, OSError) else None
        why = f"cannot write the cache entry {entry} ({cause or e})"
        moved = _temporary_root(why) / entry.parent.name / entry.name
        warnings.warn(f"{why}; caching it in {moved} until this run ends", stacklevel=2)
        _write_entry(moved, data)
        return moved
    return entry


def _write_entry(entry: Path, data: bytes) -> None:
    # The checksum goes first: a process reading between the two writes finds no entry yet (two
    # first runs filling the cache at once stay silent) or an old entry that does not match it
    # (rebuilt); none trusts a half-written pair. sha256sum's format: `sha256sum -c` checks it.
    # A link planted in the cache is replaced, never written through (it may point anywhere).
    atomic_write(_checksum_path(entry), f"{hashlib.sha256(data).hexdigest()}  {entry.name}\n", through_links=False)
    atomic_write(entry, data, through_links=False)


def _checksum_path(entry: Path) -> Path:
    return entry.with_name(entry.name + ".sha256")


def _recorded_checksum(checksum: Path) -> str | None:
    """The digest a checksum file records, or None when there is no regular, readable one."""
    try:
        if not stat.S_ISREG(checksum.stat().st_mode):
            return None
        with checksum.open("rb") as handle:
            words = handle.read(200).decode("ascii").split(maxsplit=1)
    except (OSError, UnicodeDecodeError):
        return None
    return words[0] if words else None


def _rebuilding(entry: Path, problem: str) -> None:
    warnings.warn(f"cached {entry} {problem}; rebuilding it", stacklevel=3)


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, through_links: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    A reader sees either the old file or the complete new one, never a partial write. A symlink
    is written through: its target is replaced and the link kept (docs/results.md); a cache entry
    (``through_links=False``) replaces the link itself. Never replaces a device, a FIFO or a
    socket (as root, renaming over /dev/zero would succeed).
    """
    target = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    try:
        if through_links:  # a cache entry is hwkit's own: whatever stands there is replaced
            what = not_a_regular_file(target)
            if what is not None:
                raise OutputError(f"cannot write {path}: {what}; choose a file path for the output")
            if target.is_symlink():
                target = Path(os.path.realpath(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            # mkstemp creates the file 0600; give it the mode a plain open() would have.
            os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_UMASK)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror or e}; choose a writable path") from e
    return target


def write_json(data: Any, path: str | os.PathLike[str] | None = None, compact: bool = False) -> str:
    """``data`` as strict JSON text (indented, or ``compact``), also written atomically to ``path``
    when given.

    Strict JSON has no NaN or Infinity, which strict parsers reject: every writer of hwkit goes
    through here, so they all write them as the strings "nan", "inf" and "-inf" (``finite``).
    """
    layout: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 2}
    text = json.dumps(finite(data), allow_nan=False, default=_json_default, **layout)
    if path:
        atomic_write(path, text + "\n")
    return text


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (nested in dicts, lists, tuples) as "nan"/"inf"/"-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return finite(value.item())  # numpy scalars: their float may be NaN too
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def check_writable(path: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str] | None] = ()) -> Path:
    """Fail now, before any measuring, if ``path`` could not be written later, or if it is one of
    the run's ``inputs`` (the model, its external data, an inputs file), which writing would
    destroy. A symlink is followed: ``atomic_write`` replaces the file it points to."""
    target = Path(path)
    for source in inputs:
        if source is not None and _same_file(target, Path(source)):
            raise OutputError(f"cannot write {target}: it is an input of this run ({source}) and would be "
                              "overwritten; choose another output path")
    folder = Path(os.path.realpath(target)).parent
    if target.is_dir():
        raise OutputError(f"{target} is a folder; give a file path for the output")
    try:
        what = not_a_regular_file(target)
    except OSError:
        what = None  # permissions: the access check below names them
    if what is not None:  # a device, FIFO or socket: never replaced by a result file
        raise OutputError(f"cannot write {path}: {what}; choose a file path for the output")
    if not folder.exists():
        raise OutputError(f"cannot write {target}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise OutputError(f"cannot write {target}: permission denied; choose a writable path")
    return target


def _same_file(a: Path, b: Path) -> bool:
    """The same file after symlinks (realpath) or hard links (samefile, when both exist)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


_NOT_FILES = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
              (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def not_a_regular_file(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it is not a regular file (symlinks followed), e.g. "/dev/zero is a
    character device", or None for a regular file or a path that does not exist.

    Every reader of a user's path asks this BEFORE opening it: ``/dev/zero`` would be read
    forever and ``open`` blocks on a FIFO until a writer comes. ``OSError`` (permissions) is left
    to the caller, which names its own fix.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _NOT_FILES if test(mode)), "not a regular file")
    target = os.path.realpath(path)
    link = f" (a link to {target})" if target != os.path.abspath(path) else ""
    return f"{os.fspath(path)}{link} is {kind}"
