"""Efficiency: FLOPs per inference (counted from the ONNX graph) against the measured matmul
peak of each device kind and precision that ran, for the GFLOP/s and "% of peak" columns.

A row is compared with the peak of its own precision (``peak_key``): bf16 rows with the bf16
peak, int8 rows with the int8 peak (integer ops). A precision the device has no instructions
for gets no peak, so its rows show no % of peak, never one against the fp32 figure."""

from __future__ import annotations

import warnings
from typing import Any

from hwkit.errors import HwkitError
from hwkit.measure.peak import peak_flops, peak_gflops
from hwkit.measure.records import BenchResult, peak_key
from hwkit.model.flops import count_flops

PEAK_KINDS = ("cpu", "gpu")  # device kinds hwkit peak can measure (the CPU's libraries, torch.cuda)


def attach_efficiency(result: BenchResult) -> None:
    """FLOPs per inference at each batch size, and the peak of each device kind and precision that ran."""
    for batch, shapes in result.shapes.items():
        flops = count_flops(result.model, shapes)
        if flops:
            result.flops[batch] = flops
    if not result.flops:
        return
    threads = result.settings.resolved_threads()
    ran = sorted({(r.device_kind, r.precision) for r in result.results if r.ok and r.device_kind in PEAK_KINDS})
    for kind, precision in ran:
        achieved = max(result.flops.get(r.batch, 0.0) / r.summary.median / 1e9 for r in result.results
                       if r.ok and r.summary and r.device_kind == kind and r.precision == precision)
        try:
            figure = _peak(kind, precision, threads)
            if figure is None:  # the device has no such instructions: no % of peak for these rows
                continue
            peak = figure["gflops"]
            if achieved > peak:  # a peak cached on a busy machine: measure it again, keep the best
                again = _peak(kind, precision, threads, refresh=True)
                peak = max(peak, again["gflops"] if again else 0.0)
            result.peaks[peak_key(kind, precision)] = peak
        except HwkitError as e:  # the speed figures stand without it; say why % of peak is empty
            warnings.warn(f"no % of peak for {kind} {precision}: {e}", stacklevel=2)


def _peak(kind: str, precision: str, threads: int, refresh: bool = False) -> dict[str, Any] | None:
    # fp32 through peak_gflops, the lookup every earlier caller (and test double) knows.
    return peak_gflops(kind, threads, refresh) if precision == "fp32" else peak_flops(kind, precision, threads, refresh)
