"""The device's measured matrix-multiply peak per precision, the yardstick for "% of peak".

Measured in a child process (``python -m hwkit.measure.peak``) so that its thread settings never leak
into the caller, and cached per machine, device, precision and thread count (a corrupt or foreign
cached figure is measured again). On the CPU the peak is the best of every matmul kernel installed
for that precision (``peak_kernels``): one library alone can be far from the hardware's limit
(torch's MKL reached 204 GFLOP/s on an AMD EPYC where ONNX Runtime's MLAS reached 447), and a
yardstick below what the backends achieve would show them at over 100% of peak.

A precision the device has no instructions for has no peak (``peak_flops`` returns None): a row
in that precision shows no % of peak rather than one against another precision's figure. The
int8 figure counts integer operations (2 per multiply-add, as FLOPs do): GOP/s, not GFLOP/s.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from hwkit._files import Validate, cache_dir, read_cached, write_cached, write_json
from hwkit.backend import PRECISIONS
from hwkit.errors import BackendUnavailableError, OptionError
from hwkit.measure import peak_kernels
from hwkit.measure.peak_kernels import cpu_lacks, importable
from hwkit.system import cpu_name

SECONDS = 1.0
MATRIX = peak_kernels.MATRIX  # the size every figure records (the kernels read peak_kernels.MATRIX)
# Part of the cache key: bump when a figure changes (2: checksums; 3: best of libraries;
# 4: one figure per precision).
CACHE_FORMAT = 4
UNITS = {"fp32": "GFLOP/s", "bf16": "GFLOP/s", "fp16": "GFLOP/s", "int8": "GOP/s"}  # int8 counts integer ops
LACKS = 3  # the child's exit code for "this device has no such precision"


def peak_gflops(kind: str = "cpu", threads: int = 1, refresh: bool = False) -> dict[str, Any]:
    """The cached (or newly measured) fp32 peak: {"gflops", "library", "device", "threads",
    "size", "precision"}. Every device has fp32, so it is never None (``peak_flops`` is the
    lookup for any precision)."""
    figure = peak_flops(kind, "fp32", threads, refresh)
    if figure is None:  # fp32 is never reported absent
        raise BackendUnavailableError(f"measuring the {kind} peak gave no fp32 figure; try hwkit peak --refresh")
    return figure


def peak_flops(kind: str = "cpu", precision: str = "fp32", threads: int = 1, refresh: bool = False) -> dict[str, Any] | None:
    """The cached (or newly measured) matmul peak of ``precision`` on the ``kind`` device, or
    None when the device has no instructions for it (``peak_reason`` says why). ``gflops`` is
    in ``UNITS[precision]``: GOP/s for int8.

    A cached figure that is corrupt or not such a dict is measured again (with a warning); a
    remeasurement never lowers the cached figure (a peak is a maximum).

    Raises:
        OptionError: an unknown precision.
        BackendUnavailableError: measuring failed or timed out.
    """
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    if kind == "cpu" and cpu_lacks(precision) is not None:
        return None
    key = hashlib.sha256(f"{cpu_name()}|{kind}|{precision}|{threads}|{peak_kernels.MATRIX}|{CACHE_FORMAT}".encode())
    path = cache_dir("peak") / f"{kind}-{precision}-{threads}-{key.hexdigest()[:16]}.json"
    check = _figure_check(precision)
    previous = read_cached(path, check)
    if previous is not None and not refresh:
        return dict(json.loads(previous))
    command = [sys.executable, "-m", "hwkit.measure.peak", kind, precision, str(threads)]
    env = {**os.environ, **{var: str(threads) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    what = f"the {kind} {precision} peak"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired as e:
        raise BackendUnavailableError(f"measuring {what} took over {e.timeout:g} s; try hwkit peak later") from e
    if done.returncode == LACKS:
        return None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackendUnavailableError(f"measuring {what} failed: {last}")
    line = (done.stdout.strip().splitlines() or [""])[-1].encode()
    problem = check(line)
    if problem:
        raise BackendUnavailableError(f"measuring {what} gave no figure ({problem}); try hwkit peak --refresh")
    figure: dict[str, Any] = json.loads(line)
    if previous is not None:  # a peak is a maximum: a remeasurement on a busier moment must not lower it
        figure = max(figure, json.loads(previous), key=lambda f: f["gflops"])
    write_cached(path, write_json(figure).encode())
    return figure


def peak_reason(kind: str, precision: str) -> str | None:
    """Why the ``kind`` device has no ``precision`` peak, as far as known without measuring
    (the CPU's flags), or None."""
    return cpu_lacks(precision) if kind == "cpu" else None


FIGURE_FIELDS: dict[str, tuple[type, ...]] = {
    "gflops": (float, int), "library": (str,), "device": (str,), "threads": (int,), "size": (int,),
}
OPTIONAL_FIELDS = {"precision": (str,)}  # absent in fp32 figures that older hwkit wrote


def _figure_check(precision: str) -> Validate:
    def check(data: bytes) -> str | None:
        problem = _not_a_figure(data)
        if problem is None and json.loads(data).get("precision", "fp32") != precision:
            return f"a figure of another precision than {precision}"
        return problem
    return check


def _not_a_figure(data: bytes) -> str | None:
    """Why ``data`` is not a peak figure (JSON of FIGURE_FIELDS and maybe OPTIONAL_FIELDS, a
    finite positive rate), or None."""
    try:
        figure = json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"not JSON: {e}"
    if not isinstance(figure, dict) or not set(FIGURE_FIELDS) <= set(figure) <= {*FIGURE_FIELDS, *OPTIONAL_FIELDS}:
        return f"keys are not {', '.join(FIGURE_FIELDS)} (and maybe {', '.join(OPTIONAL_FIELDS)})"
    for field, types in {**FIGURE_FIELDS, **OPTIONAL_FIELDS}.items():
        if field in figure and (not isinstance(figure[field], types) or isinstance(figure[field], bool)):
            return f"'{field}' is not {' or '.join(t.__name__ for t in types)}"
    if not (math.isfinite(figure["gflops"]) and figure["gflops"] > 0 and figure["threads"] > 0 and figure["size"] > 0):
        return "gflops, threads and size must be positive"
    return None


def _measure(kind: str, threads: int, precision: str = "fp32") -> dict[str, Any] | str:
    """Best-of ``precision`` matmul rate on this process's device (on the CPU, of every
    installed library's kernel for it; on a GPU, torch's), or why there is none."""
    if kind != "cpu":
        return _gpu_peak(threads, precision)
    figures: list[tuple[float, str]] = []
    tried: list[str] = []
    for name, make in peak_kernels.CPU_KERNELS[precision]:
        kernel = make(threads) if importable(name) else None
        if kernel is not None:
            run, label = kernel
            figures.append((_best_rate(run, lambda: None, SECONDS / 2), label))
            tried.append(name)
    if not figures:  # fp32 always has numpy, a core dependency
        return f"no installed library runs {precision} matmuls natively here"
    gflops, library = max(figures)
    return {"gflops": gflops, "library": f"{library} (best of {', '.join(tried)})", "device": cpu_name(),
            "threads": threads, "size": peak_kernels.MATRIX, "precision": precision}


def _best_rate(run: Callable[[], object], sync: Callable[[], object], seconds: float) -> float:
    """Operations per second (1e9) of the fastest of repeated MATRIX x MATRIX multiplies over ``seconds``."""
    run()
    sync()
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - start)
    return 2.0 * peak_kernels.MATRIX**3 / best / 1e9


def _gpu_peak(threads: int, precision: str) -> dict[str, Any] | str:
    try:
        import torch
    except ImportError:
        raise SystemExit("a GPU peak needs torch with CUDA") from None
    if not torch.cuda.is_available():
        raise SystemExit("a GPU peak needs torch with CUDA")
    kernel = peak_kernels.gpu_kernel(precision)
    if isinstance(kernel, str):
        return kernel
    run, sync, label = kernel
    return {"gflops": _best_rate(run, sync, SECONDS), "library": label, "device": torch.cuda.get_device_name(),
            "threads": threads, "size": peak_kernels.MATRIX, "precision": precision}


if __name__ == "__main__":
    measured = _measure(sys.argv[1], int(sys.argv[3]), sys.argv[2])  # KIND PRECISION THREADS
    if isinstance(measured, str):
        print(measured, file=sys.stderr)
        sys.exit(LACKS)
    print(json.dumps(measured))
