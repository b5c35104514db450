"""Reading users' input arrays from .npz files, and writing arrays the same way."""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import numpy as np

from hwkit.errors import ModelError
from hwkit.model.external import refuse_non_file


def load_inputs(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Arrays by name from an .npz file (never unpickles objects, never opens a device or FIFO)."""
    refuse_non_file(path, "save inputs to a file with numpy.savez and pass that")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError as e:
        raise ModelError(f"inputs file not found: {path}") from e
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelError(f"{path} is not a readable .npz file of arrays ({e}); save inputs with numpy.savez") from e


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
