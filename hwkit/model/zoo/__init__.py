"""Built-in demo models, written directly as ONNX with ``onnx.helper`` and seeded weights: no
torch, no downloads, so a user of ONNX Runtime or OpenVINO alone gets a first table at once.

Each model is built on first use (well under a second) and kept in the cache under a name that
carries ``ZOO_VERSION``; the build is deterministic, so its bytes and sha256 are the same on
every machine. A cached file that is corrupt, truncated or foreign is rebuilt (``_files.cached``).

May import: ``hwkit._files``, ``hwkit.errors``, ``hwkit.model.external``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import onnx

from hwkit._files import cache_dir, cached
from hwkit.errors import ModelError
from hwkit.model.external import PARSE_ERRORS
from hwkit.model.zoo import cnn, decoder, encoder, mlp

ZOO_VERSION = 2  # bump when a builder changes its bytes (tests/model/test_zoo.py pins the sha256s)
DEFAULT_MODEL = "cnn"


class Recipe(NamedTuple):
    build: Callable[[int], onnx.ModelProto]  # ZOO_VERSION -> the model
    default_dims: dict[str, int]
    summary: str


BUILTIN_MODELS: dict[str, Recipe] = {
    "mlp": Recipe(mlp.build, {"batch": 1}, mlp.SUMMARY),
    "cnn": Recipe(cnn.build, {"batch": 1}, cnn.SUMMARY),
    "encoder": Recipe(encoder.build, {"batch": 1}, encoder.SUMMARY),
}
# Decoders for ``--generate`` (docs/generation.md), apart from BUILTIN_MODELS: whatever runs every
# single-pass built-in once (the conformance kit, runtime checks) stays as it was.
GENERATIVE_MODELS: dict[str, Recipe] = {
    "decoder": Recipe(decoder.build, decoder.DEFAULT_DIMS, decoder.SUMMARY),
}


def builtin_path(name: str) -> tuple[Path, dict[str, int]]:
    """The cached .onnx file of the built-in model ``name`` (built on first use) and the
    dimension values its inputs default to. ``Model.builtin`` loads it."""
    recipe = BUILTIN_MODELS.get(name) or GENERATIVE_MODELS.get(name)
    if recipe is None:
        raise ModelError(
            f"unknown built-in model '{name}'; choose one of {', '.join([*BUILTIN_MODELS, *GENERATIVE_MODELS])} "
            "or pass an .onnx file"
        )
    path = cached(
        cache_dir("builtins") / f"{name}-zoo{ZOO_VERSION}.onnx",
        lambda: recipe.build(ZOO_VERSION).SerializeToString(),
        lambda data: _foreign(name, data),
    )
    return path, dict(recipe.default_dims)


def _foreign(name: str, data: bytes) -> str | None:
    """Why ``data`` is not this hwkit's built-in ``name`` (its checksum may still match)."""
    try:
        proto = onnx.load_model_from_string(data)
    except PARSE_ERRORS as e:
        return f"not ONNX: {type(e).__name__}"
    made_by = f"{proto.producer_name} {proto.producer_version}"
    if (proto.graph.name, made_by) != (name, f"hwkit zoo{ZOO_VERSION}"):
        return f"graph '{proto.graph.name}' made by '{made_by.strip()}'"
    return None
