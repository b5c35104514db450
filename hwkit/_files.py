"""Where hwkit keeps files between runs, and how it writes files: atomically (a crash never
half-writes one) and, for JSON, strictly (one rule for NaN and Infinity).

May import: ``hwkit.errors`` only.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

from hwkit.errors import OutputError


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: put it back at once
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def cache_dir(*parts: str) -> Path:
    """The user cache folder (``HWKIT_CACHE_DIR`` overrides it), created on demand."""
    root = os.environ.get("HWKIT_CACHE_DIR") or platformdirs.user_cache_dir("hwkit")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    A reader sees either the old file or the complete new one, never a partial write.
    """
    target = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    try:
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


def write_json(data: Any, path: str | os.PathLike[str] | None = None) -> str:
    """``data`` as indented, strict JSON text, also written atomically to ``path`` when given.

    Strict JSON has no NaN or Infinity, which strict parsers reject: every writer of hwkit goes
    through here, so they all write them as the strings "nan", "inf" and "-inf" (``finite``).
    """
    text = json.dumps(finite(data), indent=2, allow_nan=False, default=_json_default)
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


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail now, before any measuring, if ``path`` could not be written later."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"{target} is a folder; give a file path for the output")
    if not folder.exists():
        raise OutputError(f"cannot write {target}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise OutputError(f"cannot write {target}: permission denied; choose a writable path")
    return target
