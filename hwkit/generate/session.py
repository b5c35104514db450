"""A step session for any Executable: the backend's own (``hwkit.backend.Stepper``), or the
generic one that feeds the cache back as numpy arrays through ``execute``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hwkit.backend import Executable, StepSession, Stepper
from hwkit.errors import BackendOutputError


class NumpySession:
    """The cache as host numpy arrays: every step feeds them to ``execute`` and keeps the
    presents it returns. Works for every backend; the copies are part of what it measures."""

    def __init__(self, exe: Executable, state: Mapping[str, str], initial: Mapping[str, np.ndarray],
                 outputs: Sequence[str]) -> None:
        self.exe = exe
        self.state = dict(state)
        self.values = dict(initial)
        self.outputs = list(outputs)

    def step(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self.exe.execute({**feeds, **self.values})
        self.exe.synchronize()
        missing = [name for name in [*self.state, *self.outputs] if name not in results]
        if missing:
            raise BackendOutputError(f"{type(self.exe).__name__} returned no {', '.join(missing)}")
        self.values = {past: results[present] for present, past in self.state.items()}
        return {name: results[name] for name in self.outputs}

    def state_bytes(self) -> int:
        return sum(int(v.nbytes) for v in self.values.values())

    def close(self) -> None:
        self.values = {}


def open_session(exe: Executable, state: Mapping[str, str], initial: Mapping[str, np.ndarray],
                 outputs: Sequence[str], native: bool = True) -> tuple[StepSession, str]:
    """The backend's own session when it offers one (and ``native``), else ``NumpySession``;
    with where the cache lives ("native" or "numpy") for the result."""
    if native and isinstance(exe, Stepper):
        return exe.step_session(state, initial, outputs), "native"
    return NumpySession(exe, state, initial, outputs), "numpy"
