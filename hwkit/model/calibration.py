"""The inputs int8 calibration runs on: seeded generated sets, or the user's ``.npz`` file.

A calibration file holds one array per model input, named by the input. An array either has
the input's rank plus a leading sample axis (N samples) or exactly the input's rank (one
sample); every array gives the same N. Each sample must fit the model's signature as any input
does (dtype, fixed dimensions, symbolic dimensions consistent within the sample).

Seeded sets use seeds ``seed + CALIBRATION_SEED_OFFSET + i``: the same generator as ``bench``
and ``check``, on seeds their input sets (``seed .. seed + count - 1``) never reach, so a
quantised graph is never judged on the inputs it was calibrated with.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwkit.errors import ModelError, OptionError
from hwkit.model.external import refuse_non_file
from hwkit.model.npz import load_inputs

if TYPE_CHECKING:
    from hwkit.model.model import Model

DEFAULT_SAMPLES = 32  # ORT's MinMax ranges on the built-in cnn stop moving by ~16 samples
CALIBRATION_SEED_OFFSET = 1 << 20


def calibration_source(model: Model, *, seed: int, shapes: Mapping[str, Sequence[int]] | None,
                       dims: Mapping[str, int] | None, calibration: str | os.PathLike[str] | None,
                       samples: int | None) -> dict[str, Any]:
    """What the calibration runs on, as recorded in the result and keyed in the cache: cheap to
    compute (no sample is drawn or read but the file's hash).

    Raises:
        OptionError: ``samples`` is not a whole number >= 1.
        ModelError: the shapes do not fit the model, or the file cannot be read.
    """
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise OptionError(f"calibration samples must be a whole number >= 1, got {samples!r}")
    if calibration is None:
        resolved = model.resolve_shapes(shapes, dims)
        count = samples or DEFAULT_SAMPLES
        first = seed + CALIBRATION_SEED_OFFSET
        return {"source": "seeded", "seed": seed, "seeds": f"{first}..{first + count - 1}", "samples": count,
                "shapes": {name: list(shape) for name, shape in resolved.items()}}
    path = Path(calibration)
    return {"source": "file", "file": str(path), "sha256": _file_sha256(path), "samples": samples}


def calibration_sets(model: Model, source: Mapping[str, Any], *, shapes: Mapping[str, Sequence[int]] | None,
                     dims: Mapping[str, int] | None) -> list[dict[str, np.ndarray]]:
    """The input sets ``source`` (from ``calibration_source``) describes.

    Raises:
        ModelError: a file whose names, ranks, sample counts, dtypes or shapes do not fit the
            model; the message names what the model expects.
    """
    if source["source"] == "seeded":
        first = int(source["seeds"].split("..")[0])
        return [model.check_inputs(model.make_inputs(shapes, dims, seed=first + i)) for i in range(source["samples"])]
    return _file_sets(model, Path(source["file"]), source["samples"])


def _file_sets(model: Model, path: Path, samples: int | None) -> list[dict[str, np.ndarray]]:
    arrays = load_inputs(path)
    expected = "; the model expects " + ", ".join(str(spec) for spec in model.inputs) + \
        " (each with an optional leading sample axis)"
    names = {spec.name for spec in model.inputs}
    missing = [name for name in names if name not in arrays]
    unknown = [name for name in arrays if name not in names]
    if missing or unknown:
        what = ", ".join([f"missing '{n}'" for n in sorted(missing)] + [f"unknown '{n}'" for n in sorted(unknown)])
        raise ModelError(f"calibration file {path}: {what}{expected}")
    counts: dict[str, int] = {}
    for spec in model.inputs:
        array = arrays[spec.name]
        rank = len(spec.shape) if spec.shape is not None else array.ndim
        if array.ndim == rank + 1:
            counts[spec.name] = array.shape[0]
        elif array.ndim == rank:
            arrays[spec.name] = array[np.newaxis]
            counts[spec.name] = 1
        else:
            raise ModelError(f"calibration file {path}: '{spec.name}' has shape {list(array.shape)}, neither rank "
                             f"{rank} (one sample) nor {rank + 1} (samples first){expected}")
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"'{name}' {count}" for name, count in counts.items())
        raise ModelError(f"calibration file {path}: the arrays hold different numbers of samples ({listed}); "
                         "give every input the same leading sample axis")
    available = next(iter(counts.values()))
    if available == 0:
        raise ModelError(f"calibration file {path} holds no samples (a sample axis of length 0){expected}")
    if samples is not None and samples > available:
        raise ModelError(f"calibration file {path} holds {available} samples, fewer than the {samples} asked for; "
                         "ask for fewer or add samples")
    sets = []
    for i in range(samples or available):
        try:
            sets.append(model.check_inputs({name: arrays[name][i] for name in names}))
        except ModelError as e:
            raise ModelError(f"calibration file {path}, sample {i}: {e}{expected}") from e
    return sets


def _file_sha256(path: Path) -> str:
    refuse_non_file(path, "save calibration inputs to a file with numpy.savez")  # a FIFO would block the hash
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    except FileNotFoundError as e:
        raise ModelError(f"calibration file not found: {path}; save calibration inputs with numpy.savez") from e
    except OSError as e:
        raise ModelError(f"cannot read calibration file {path}: {e.strerror or e}") from e
    return digest.hexdigest()
