"""Efficiency: FLOPs per inference (counted from the ONNX graph) against the measured matmul
peak of each device kind that ran, for the GFLOP/s and "% of peak" columns."""

from __future__ import annotations

import warnings

from hwkit.errors import HwkitError
from hwkit.measure.peak import peak_gflops
from hwkit.measure.records import BenchResult
from hwkit.model.flops import count_flops

PEAK_KINDS = ("cpu", "gpu")  # device kinds hwkit peak can measure (torch on the CPU, torch.cuda)


def attach_efficiency(result: BenchResult) -> None:
    """FLOPs per inference at each batch size, and the peak of each device kind that ran."""
    for batch, shapes in result.shapes.items():
        flops = count_flops(result.model, shapes)
        if flops:
            result.flops[batch] = flops
    if not result.flops:
        return
    threads = result.settings.resolved_threads()
    for kind in sorted({r.device_kind for r in result.results if r.ok and r.device_kind in PEAK_KINDS}):
        achieved = max(result.flops.get(r.batch, 0.0) / r.summary.median / 1e9
                       for r in result.results if r.ok and r.summary and r.device_kind == kind)
        try:
            peak = peak_gflops(kind, threads)["gflops"]
            if achieved > peak:  # a peak cached on a busy machine: measure it again, keep the best
                peak = max(peak, peak_gflops(kind, threads, refresh=True)["gflops"])
            result.peaks[kind] = peak
        except HwkitError as e:  # the speed figures stand without it; say why % of peak is empty
            warnings.warn(f"no % of peak for {kind}: {e}", stacklevel=2)
