"""One plan for every scenario: which backends run, which one is the reference, and the input
sets every backend receives.

The reference rule (one, for bench, check and bisect): the backend named with ``--reference``
(``reference=``); otherwise onnxruntime when it is available here, chosen or not (a neutral,
widely used runtime); otherwise the first chosen backend. A reference that was not chosen runs
for its outputs only.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

import numpy as np

from hwkit.api import ModelSource, open_model, split_target
from hwkit.errors import BackendUnavailableError, OptionError
from hwkit.model import Model
from hwkit.model.npz import load_inputs
from hwkit.plugins import default_backends, registry

DEFAULT_REFERENCE = "onnxruntime"
InputsSource = Mapping[str, np.ndarray] | str | os.PathLike[str] | None


@dataclasses.dataclass(frozen=True)
class Plan:
    """The backends of one run and the reference their outputs are compared with."""

    model: Model
    targets: list[str]  # as chosen: "name" or "name:DEVICE", each once
    reference: str
    reference_note: str  # why this reference, for reports

    @property
    def reference_chosen(self) -> bool:
        """Whether the reference is one of the chosen targets (else it runs for outputs only)."""
        return self.reference in self.targets


def plan(model: ModelSource, backends: Sequence[str] | None = None, reference: str | None = None) -> Plan:
    """Open the model, pick the targets (default: every available backend) and the reference.

    Raises:
        BackendUnavailableError: no backend can run here.
        BackendNotFoundError / BackendUnavailableError: a named backend cannot run here (before
            anything runs).
    """
    opened = open_model(model)
    targets = list(dict.fromkeys(backends)) if backends else default_backends()
    if not targets:
        raise BackendUnavailableError("no backend is available here; see 'hwkit backends' for what to install")
    for target in targets:
        registry().get(split_target(target)[0])  # unknown names fail here, before anything runs
    chosen, note = choose_reference(targets, reference)
    return Plan(opened, targets, chosen, note)


def choose_reference(targets: Sequence[str], reference: str | None = None) -> tuple[str, str]:
    """The reference backend by the one rule (module docstring), and why it was chosen."""
    if reference:
        registry().get(split_target(reference)[0])
        return reference, "chosen with --reference"
    info = registry().find(DEFAULT_REFERENCE)  # imports only that plugin when it is installed
    if info is not None and info.status == "available":
        return DEFAULT_REFERENCE, "the default reference"
    return targets[0], f"{DEFAULT_REFERENCE} is not available here, so the first chosen backend"


@dataclasses.dataclass(frozen=True)
class InputSets:
    """The input sets every backend receives, checked once against the model."""

    shapes: dict[str, tuple[int, ...]]
    sets: list[dict[str, np.ndarray]]
    described: str  # "seeds 0..2", "seed 0", or where the caller's inputs came from


def make_input_sets(
    model: Model,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
    count: int = 1,
    batch: int | None = None,
    given: InputsSource = None,
) -> InputSets:
    """``count`` seeded input sets (seeds ``seed .. seed + count - 1``), or the caller's own
    inputs (``given``: arrays or an .npz path); ``batch`` sets the model's batch dimension."""
    if given is not None:
        source = os.fspath(given) if isinstance(given, (str, os.PathLike)) else "caller's arrays"
        arrays = load_inputs(given) if isinstance(given, (str, os.PathLike)) else dict(given)
        checked = model.check_inputs(arrays)
        return InputSets({k: tuple(v.shape) for k, v in checked.items()}, [checked], source)
    sizes = dict(dims or {})
    flags: dict[str, str] = {}  # dimensions set by a flag other than --dim
    if batch is not None:
        name = batch_dim(model)
        if name is None:
            first = model.inputs[0] if model.inputs else None
            raise OptionError(
                f"--batch needs a model whose first input has a dynamic leading dimension; "
                f"{first or 'this model'} has none (re-export with a dynamic batch axis)"
            )
        sizes[name], flags[name] = batch, "--batch"
    resolved = model.resolve_shapes(shapes, sizes)
    # Every set at once, before the first is drawn: a run holds them all (bench rotates them).
    model.check_memory(resolved, sets=count, explicit=list(shapes or ()), flags=flags)
    seeds = range(seed, seed + count)
    sets = [model.check_inputs(model.make_inputs(resolved, seed=k)) for k in seeds]
    described = f"seed {seed}" if count == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    return InputSets(resolved, sets, described)


def batch_dim(model: Model) -> str | None:
    """The symbolic name of the first input's leading axis: the batch a sweep varies."""
    spec = model.inputs[0] if model.inputs else None
    if spec and spec.shape and isinstance(spec.shape[0], str):
        return spec.shape[0]
    return None
