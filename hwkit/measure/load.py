"""Was the machine free? The CPU time other processes took while a backend was measured.

A CPU-bound process elsewhere on the machine takes cores that the measured backend was told it
had: torch's OpenMP pool then collapses (rows 20-80x slower were seen), while ONNX Runtime and
OpenVINO lose about 2x. Such a row is not a result about the backend, so the bench records how
many cores other processes kept busy during each backend's run and says so in the table.

The figure is the machine's busy CPU time (``psutil.cpu_times``: everything but idle and I/O
wait, hypervisor steal included) minus hwkit's own (this process and its waited-for workers),
divided by the wall time of the window: other processes' average busy cores.
"""

from __future__ import annotations

import dataclasses
import math
import time

import psutil

BUSY_CORES = 0.5  # other processes' average busy cores above which a row is marked


@dataclasses.dataclass(frozen=True)
class CpuSnapshot:
    """Clock, the machine's busy CPU seconds, and hwkit's own (with its waited-for children)."""

    wall: float
    busy: float
    ours: float


def snapshot() -> CpuSnapshot:
    machine = psutil.cpu_times()
    busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
    own = psutil.Process().cpu_times()
    ours = own.user + own.system + own.children_user + own.children_system
    return CpuSnapshot(time.monotonic(), busy, ours)


def others_busy_cores(before: CpuSnapshot, after: CpuSnapshot) -> float | None:
    """Other processes' average busy cores between two snapshots; None for too short a window
    (the kernel's CPU accounting ticks at 100-1000 Hz)."""
    wall = after.wall - before.wall
    if wall < 0.2:
        return None
    others = (after.busy - before.busy) - (after.ours - before.ours)
    return max(0.0, others / wall)


def fitting_threads(usable_cores: int, busy: float) -> int:
    """The thread count that fits in the cores other processes left free (at least 1)."""
    return max(1, math.floor(usable_cores - busy + 0.25))
