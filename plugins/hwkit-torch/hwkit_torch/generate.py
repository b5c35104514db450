"""The KV cache kept as torch tensors on the backend's device while a decoder generates
(``hwkit.backend.Stepper``): each step's present outputs go straight back in as the pasts; only
the requested outputs (logits) are converted to numpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class TorchStepSession:
    """Steps of a ``TorchGraphExecutable`` (``exe``), through its own conversions and forward."""

    def __init__(self, exe: Any, state: Mapping[str, str], initial: Mapping[str, np.ndarray],
                 outputs: Sequence[str]) -> None:
        self.exe = exe
        self.state = dict(state)
        self.position = {name: i for i, (name, _, _) in enumerate(exe.output_specs)}
        self.outputs = [(name, self.position[name]) for name in outputs]
        self.values: dict[str, Any] = {past: exe._to_device(np.array(array)) for past, array in initial.items()}

    def step(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        exe = self.exe
        tensors = [self.values[name] if name in self.values else exe._value_to_device(feeds[name])
                   for name in exe.input_names]
        results = exe._guarded_forward(tensors, f"a generation step of '{exe.model.name}'")
        self.values = {past: results[self.position[present]] for present, past in self.state.items()}
        specs = exe.output_specs
        return {name: exe._to_numpy(results[i], specs[i][1], specs[i][2]) for name, i in self.outputs}

    def state_bytes(self) -> int:
        return sum(int(t.numel() * t.element_size()) for t in self.values.values())

    def close(self) -> None:
        self.values = {}
