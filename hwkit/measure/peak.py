"""The device's measured fp32 matrix-multiply peak, the yardstick for "% of peak".

Measured in a child process (``python -m hwkit.measure.peak``) so that its thread settings never leak
into the caller, with torch when installed (the BLAS the torch backends use) else numpy, and
cached per machine, device, thread count and library.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from hwkit._files import atomic_write, cache_dir
from hwkit.errors import BackendUnavailableError
from hwkit.system import cpu_name

MATRIX = 2048
SECONDS = 1.0


def peak_gflops(kind: str = "cpu", threads: int = 1, refresh: bool = False) -> dict[str, Any]:
    """The cached (or newly measured) peak: {"gflops", "library", "device", "threads", "size"}."""
    key = hashlib.sha256(f"{cpu_name()}|{kind}|{threads}|{MATRIX}".encode()).hexdigest()[:16]
    path = cache_dir("peak") / f"{kind}-{threads}-{key}.json"
    if path.exists() and not refresh:
        return json.loads(path.read_text())
    command = [sys.executable, "-m", "hwkit.measure.peak", kind, str(threads)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        raise BackendUnavailableError(f"measuring the {kind} peak took over {e.timeout:g} s; try hwkit peak later") from e
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackendUnavailableError(f"measuring the {kind} peak failed: {last}")
    figure = json.loads(done.stdout.strip().splitlines()[-1])
    if path.exists():  # a peak is a maximum: a remeasurement on a busier moment must not lower it
        previous = json.loads(path.read_text())
        figure = max(figure, previous, key=lambda f: f["gflops"])
    atomic_write(path, json.dumps(figure))
    return figure


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
