"""Built-in demo models, defined in plain torch (no downloads, no torchvision).

Each is exported once to ONNX and cached under a name that includes the zoo's version and
torch's, so later runs read the .onnx file without importing torch at all.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import onnx

from hwkit._files import atomic_write, cache_dir
from hwkit.errors import BackendUnavailableError, ModelError

ZOO_VERSION = 1  # bump when a definition below changes
DEFAULT_MODEL = "cnn"


class Recipe(NamedTuple):
    build: Callable[[], tuple[Any, tuple[Any, ...]]]  # -> (module, example inputs)
    dynamic: dict[str, dict[int, str]]  # input -> {axis: dimension name}
    default_dims: dict[str, int]
    outputs: list[str]
    summary: str


def _mlp() -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)), (torch.randn(1, 784),)


def _cnn() -> tuple[Any, tuple[Any, ...]]:
    import torch

    from hwkit.model.zoo_torch import ResNet18Like

    torch.manual_seed(0)
    return ResNet18Like(), (torch.randn(1, 3, 224, 224),)


def _encoder() -> tuple[Any, tuple[Any, ...]]:
    import torch

    from hwkit.model.zoo_torch import SmallEncoder

    torch.manual_seed(0)
    module = SmallEncoder()
    return module, (torch.randint(0, module.vocab, (1, module.seq_len)),)


BUILTIN_MODELS: dict[str, Recipe] = {
    "mlp": Recipe(_mlp, {"x": {0: "batch"}}, {"batch": 1}, ["logits"], "784-128-10 MLP (Linear, ReLU, Linear)"),
    "cnn": Recipe(_cnn, {"x": {0: "batch"}}, {"batch": 1}, ["logits"], "ResNet-18-like CNN, 3x224x224 images"),
    "encoder": Recipe(
        _encoder, {"input_ids": {0: "batch"}}, {"batch": 1}, ["hidden_states"],
        "BERT-like encoder: 4 layers, hidden 256, 4 heads, sequence 128",
    ),
}


def builtin_path(name: str) -> tuple[Path, dict[str, int]]:
    """The cached .onnx file of the built-in model ``name`` (exported on first use) and the
    dimension values its inputs default to. ``Model.builtin`` loads it."""
    if name not in BUILTIN_MODELS:
        raise ModelError(
            f"unknown built-in model '{name}'; choose one of {', '.join(BUILTIN_MODELS)} "
            "or pass an .onnx file"
        )
    recipe = BUILTIN_MODELS[name]
    path = cache_dir("builtins") / f"{name}-v{ZOO_VERSION}-torch{_torch_version()}.onnx"
    if not path.exists():
        atomic_write(path, _export(name, recipe).SerializeToString())
    return path, dict(recipe.default_dims)


def _export(name: str, recipe: Recipe) -> onnx.ModelProto:
    import torch

    from hwkit.model.export import export_torch

    module, args = recipe.build()
    input_names = list(recipe.dynamic)
    dynamic = tuple(
        {axis: torch.export.Dim(dim) for axis, dim in axes.items()} for axes in recipe.dynamic.values()
    )
    if len(input_names) != len(args):
        raise ModelError(f"built-in '{name}' is inconsistent: {len(args)} inputs, {input_names}")
    return export_torch(module, args, dynamic, input_names, recipe.outputs)


def _torch_version() -> str:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError as e:
        raise BackendUnavailableError(
            "the built-in models are defined in torch, which is not installed; "
            "pip install 'hwkit[torch]' or pass an .onnx file"
        ) from e
