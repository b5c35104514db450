"""Reading users' input arrays from .npz files, and writing arrays the same way."""

from __future__ import annotations

import io
import math
import os
import zipfile
from typing import Any

import numpy as np
import psutil

from hwkit.errors import InputMemoryError, ModelError
from hwkit.model.external import refuse_non_file


def load_inputs(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Arrays by name from an .npz file (never unpickles objects, never opens a device or FIFO)."""
    refuse_non_file(path, "save inputs to a file with numpy.savez and pass that")
    try:
        _check_sizes(path)
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError as e:
        raise ModelError(f"inputs file not found: {path}") from e
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelError(f"{path} is not a readable .npz file of arrays ({e}); save inputs with numpy.savez") from e


def _check_sizes(path: str | os.PathLike[str]) -> None:
    """Read every member's .npy header (a few bytes) and refuse, before an array is allocated, a
    member whose header declares more data than it holds or arrays larger than the free memory."""
    if not zipfile.is_zipfile(path):
        return  # a plain .npy or not an array file: np.load reports it
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _, dtype = header(member, max_header_size=10_000)
                declared = math.prod(shape) * dtype.itemsize
                room = info.file_size - member.tell()
            name = info.filename[:-4]
            if declared > room:
                raise ModelError(f"{path}: array '{name}' declares shape {shape} of {dtype} ({declared:,} bytes) but "
                                 f"holds {max(room, 0):,} bytes; the file is damaged or crafted: save it again with "
                                 "numpy.savez")
            total += declared
    available = psutil.virtual_memory().available
    if total > available:
        raise InputMemoryError(f"{path} holds {total / 2**30:.1f} GiB of arrays, more than the "
                               f"{available / 2**30:.1f} GiB of memory available; pass smaller inputs",
                               needed=total, available=available)


def save_arrays(arrays: dict[str, Any]) -> bytes:
    """The bytes of an .npz file holding ``arrays`` (written atomically by the caller); never
    pickles: a sequence output becomes one array per element."""
    flat: dict[str, np.ndarray] = {}
    for name, value in arrays.items():  # sequences as NAME.0, NAME.1 ...; absent optionals left out
        if isinstance(value, list):
            flat.update({f"{name}.{i}": np.asarray(item) for i, item in enumerate(value)})
        elif value is not None:
            flat[name] = np.asarray(value)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=True, **flat)  # numpy's default, named so no array stands for it
    return buffer.getvalue()
