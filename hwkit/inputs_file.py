"""Reading users' input arrays from .npz files, and writing arrays the same way."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np

from hwkit.errors import ModelError


def load_inputs(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Arrays by name from an .npz file (never unpickles objects)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError as e:
        raise ModelError(f"inputs file not found: {path}") from e
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelError(f"{path} is not a readable .npz file of arrays ({e}); save inputs with numpy.savez") from e


def save_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes of an .npz file holding ``arrays`` (written atomically by the caller)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
