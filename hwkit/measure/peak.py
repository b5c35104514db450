"""The device's measured fp32 matrix-multiply peak, the yardstick for "% of peak".

Measured in a child process (``python -m hwkit.measure.peak``) so that its thread settings never leak
into the caller, with torch when installed (the BLAS the torch backends use) else numpy, and
cached per machine, device and thread count (a corrupt or foreign cached figure is measured again).
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from hwkit._files import cache_dir, read_cached, write_cached, write_json
from hwkit.errors import BackendUnavailableError
from hwkit.system import cpu_name

MATRIX = 2048
SECONDS = 1.0
CACHE_FORMAT = 2  # part of the cache key: bump when a figure's fields change (2: with checksums)


def peak_gflops(kind: str = "cpu", threads: int = 1, refresh: bool = False) -> dict[str, Any]:
    """The cached (or newly measured) peak: {"gflops", "library", "device", "threads", "size"}.

    A cached figure that is corrupt or not such a dict is measured again (with a warning).
    """
    key = hashlib.sha256(f"{cpu_name()}|{kind}|{threads}|{MATRIX}|{CACHE_FORMAT}".encode()).hexdigest()[:16]
    path = cache_dir("peak") / f"{kind}-{threads}-{key}.json"
    previous = read_cached(path, _not_a_figure)
    if previous is not None and not refresh:
        return dict(json.loads(previous))
    command = [sys.executable, "-m", "hwkit.measure.peak", kind, str(threads)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        raise BackendUnavailableError(f"measuring the {kind} peak took over {e.timeout:g} s; try hwkit peak later") from e
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackendUnavailableError(f"measuring the {kind} peak failed: {last}")
    line = (done.stdout.strip().splitlines() or [""])[-1].encode()
    problem = _not_a_figure(line)
    if problem:
        raise BackendUnavailableError(f"measuring the {kind} peak gave no figure ({problem}); try hwkit peak --refresh")
    figure: dict[str, Any] = json.loads(line)
    if previous is not None:  # a peak is a maximum: a remeasurement on a busier moment must not lower it
        figure = max(figure, json.loads(previous), key=lambda f: f["gflops"])
    write_cached(path, write_json(figure).encode())
    return figure


FIGURE_FIELDS: dict[str, tuple[type, ...]] = {
    "gflops": (float, int), "library": (str,), "device": (str,), "threads": (int,), "size": (int,),
}


def _not_a_figure(data: bytes) -> str | None:
    """Why ``data`` is not a peak figure (JSON of exactly FIGURE_FIELDS, a finite positive
    GFLOP/s), or None."""
    try:
        figure = json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"not JSON: {e}"
    if not isinstance(figure, dict) or set(figure) != set(FIGURE_FIELDS):
        return f"keys are not {', '.join(FIGURE_FIELDS)}"
    for field, types in FIGURE_FIELDS.items():
        if not isinstance(figure[field], types) or isinstance(figure[field], bool):
            return f"'{field}' is not {' or '.join(t.__name__ for t in types)}"
    if not (math.isfinite(figure["gflops"]) and figure["gflops"] > 0 and figure["threads"] > 0 and figure["size"] > 0):
        return "gflops, threads and size must be positive"
    return None


def _measure(kind: str, threads: int) -> dict[str, Any]:
    """Best-of fp32 matmul GFLOP/s over about SECONDS of repeats, on this process's device."""
    flops = 2.0 * MATRIX**3
    try:
        import torch
    except ImportError:
        torch = None  # type: ignore[assignment]
    run: Callable[[], object]  # one matrix multiply
    sync: Callable[[], object]  # waits until it has finished
    if kind != "cpu":
        if torch is None or not torch.cuda.is_available():
            raise SystemExit("a GPU peak needs torch with CUDA")
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
        a = torch.randn(MATRIX, MATRIX, device="cuda")
        b = torch.randn(MATRIX, MATRIX, device="cuda")
        run = lambda: torch.mm(a, b)  # noqa: E731
        sync = torch.cuda.synchronize
        library, device = f"torch {torch.__version__}", torch.cuda.get_device_name()
    elif torch is not None:
        torch.set_num_threads(threads)
        a, b = torch.randn(MATRIX, MATRIX), torch.randn(MATRIX, MATRIX)
        run, sync, library, device = (lambda: torch.mm(a, b)), (lambda: None), f"torch {torch.__version__}", cpu_name()
    else:
        import numpy as np  # its BLAS picks its own threads: the figure says which library

        x = np.random.default_rng(0).standard_normal((MATRIX, MATRIX), dtype=np.float32)
        run, sync, library, device = (lambda: x @ x), (lambda: None), f"numpy {np.__version__}", cpu_name()
    run()
    sync()
    best = float("inf")
    end = time.perf_counter() + SECONDS
    while time.perf_counter() < end:
        start = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - start)
    return {"gflops": flops / best / 1e9, "library": library, "device": device, "threads": threads, "size": MATRIX}


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1], int(sys.argv[2]))))
