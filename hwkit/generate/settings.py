"""How to generate: ``GenerateSettings``, shared by ``bench --generate`` and ``check --generate``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from hwkit.backend import Precision
from hwkit.errors import OptionError
from hwkit.measure.settings import default_threads
from hwkit.parity.tolerance import tolerance
from hwkit.runner.validate import check_number, check_numbers


@dataclasses.dataclass(frozen=True)
class GenerateSettings:
    """Greedy generation of ``new`` tokens after a seeded prompt of each length in ``prompts``,
    at each batch size in ``batches``: ``warmup`` untimed generations of the same length (a
    runtime may pay once per new shape, and every past length is one), then ``runs`` timed ones.
    Every step of every timed run is a per-token sample."""

    prompts: Sequence[int] = (128,)
    new: int = 64
    batches: Sequence[int] = (1, 4)
    runs: int = 3
    warmup: int = 1
    seed: int = 0
    threads: int | None = None  # None: default_threads(), the same for every backend
    options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # per backend
    isolation: bool = True  # each backend in a process of its own
    timeout: float = 600.0  # seconds a backend may take per (prompt, batch) before it is stopped
    precision: Precision = "fp32"  # the tolerance profile logits are judged by; one axis of the rows
    native: bool = True  # the backend's own step session (cache kept in the runtime) where it has one

    def __post_init__(self) -> None:
        if self.new < 1 or isinstance(self.new, bool) or not isinstance(self.new, int):
            raise OptionError(f"--new must be a whole number of tokens >= 1, got {self.new!r}: generation makes "
                              "at least the first token (--new 1 measures the prefill alone)")
        if not self.prompts or not self.batches:
            raise OptionError("give at least one prompt length (--prompt) and one batch size (--batch)")
        for size in self.prompts:
            check_number("prompt length (--prompt)", size, 1, whole=True)
        for size in self.batches:
            check_number("batch size (--batch)", size, 1, whole=True)
        check_numbers(self, {"runs": 1, "warmup": 0, "seed": 0, "threads": 1}, whole=True)
        check_numbers(self, {"timeout": 0}, unit="seconds")
        tolerance(self.precision)

    def resolved_threads(self) -> int:
        return self.threads or default_threads()

    def backend_options(self, name: str) -> dict[str, Any]:
        """The options one backend gets: the common thread count, then its own -o values."""
        return {"threads": self.resolved_threads(), **self.options.get(name, {})}
