"""How to measure: ``BenchSettings``, and the thread count every backend is given."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

from hwkit.backend import Precision
from hwkit.runner.sweep import parse_precisions
from hwkit.runner.validate import check_number, check_numbers


def default_threads() -> int:
    """Physical cores this process may use: one value given to every backend."""
    usable = len(psutil.Process().cpu_affinity() or []) if hasattr(psutil.Process, "cpu_affinity") else 0
    physical = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    return max(1, min(physical, usable) if usable else physical)


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """How to measure. Timed runs continue until BOTH min_iters and min_time are reached
    (or max_time passes, which the result then states)."""

    warmup_iters: int = 10
    warmup_time: float = 0.5
    min_iters: int = 30
    min_time: float = 2.0
    max_time: float = 15.0  # per backend and batch; the result says when it stopped timing here
    target_ci: float | None = 0.02  # keep timing past the minimums until the median's 95% CI is ±2%
    threads: int | None = None  # None: default_threads(), the same for every backend
    seed: int = 0
    input_sets: int = 4  # inputs rotate among this many seeded sets so caches do not flatter
    shapes: Mapping[str, Sequence[int]] | None = None
    dims: Mapping[str, int] | None = None
    options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # per backend
    batches: Sequence[int] | None = None  # throughput sweep over the dynamic batch dimension
    isolation: bool = True  # each backend in a process of its own
    efficiency: bool = True  # count FLOPs and compare with the measured matmul peak
    # The precision sweep: every backend runs each (docs/precision.md); each row is judged by its
    # precision's tolerance profile. A comma string or a list; stored as a tuple.
    precisions: Sequence[Precision] | str = ("fp32",)
    calibration: str | os.PathLike[str] | None = None  # int8: the quantiser's calibration .npz
    timeout: float = 600.0  # seconds a backend may take (compile + runs) before it is stopped

    def __post_init__(self) -> None:
        check_numbers(self, {"warmup_iters": 0, "min_iters": 1, "input_sets": 1, "seed": 0, "threads": 1}, whole=True)
        check_numbers(self, {"warmup_time": 0, "min_time": 0, "max_time": 0, "timeout": 0}, unit="seconds")
        check_numbers(self, {"target_ci": 0})
        object.__setattr__(self, "precisions", parse_precisions(self.precisions))  # unknown ones fail now
        for size in self.batches or ():
            check_number("batch size", size, 1, whole=True)

    def resolved_threads(self) -> int:
        return self.threads or default_threads()

    def backend_options(self, name: str) -> dict[str, Any]:
        """The options one backend gets: the common thread count, then its own -o values."""
        return {"threads": self.resolved_threads(), **self.options.get(name, {})}
