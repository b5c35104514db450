"""The device's measured fp32 matrix-multiply peak, the yardstick for "% of peak".

Measured in a child process (``python -m hwkit.measure.peak``) so that its thread settings never leak
into the caller, and cached per machine, device and thread count (a corrupt or foreign cached figure
is measured again). On the CPU the peak is the best of every matmul kernel installed (torch,
numpy, ONNX Runtime, OpenVINO): one library alone can be far from the hardware's limit (torch's MKL
reached 204 GFLOP/s on an AMD EPYC where ONNX Runtime's MLAS reached 447), and a yardstick below
what the backends achieve would show them at over 100% of peak.
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

from hwkit._files import cache_dir, read_cached, write_cached, write_json
from hwkit.errors import BackendUnavailableError
from hwkit.system import cpu_name

MATRIX = 2048
SECONDS = 1.0
CACHE_FORMAT = 3  # part of the cache key: bump when a figure changes (2: checksums; 3: best of libraries)


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
    env = {**os.environ, **{var: str(threads) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
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
    """Best-of fp32 matmul GFLOP/s on this process's device: on the CPU, of every installed
    library's kernel; on a GPU, torch's (cuBLAS)."""
    if kind != "cpu":
        return _gpu_peak(threads)
    figures: list[tuple[float, str]] = []
    tried: list[str] = []
    for name, make in _CPU_KERNELS:
        if _importable(name):
            run, label = make(threads)
            figures.append((_best_rate(run, lambda: None, SECONDS / 2), label))
            tried.append(name)
    gflops, library = max(figures)  # numpy is a core dependency: never empty
    return {"gflops": gflops, "library": f"{library} (best of {', '.join(tried)})", "device": cpu_name(),
            "threads": threads, "size": MATRIX}


def _best_rate(run: Callable[[], object], sync: Callable[[], object], seconds: float) -> float:
    """GFLOP/s of the fastest of repeated MATRIX x MATRIX multiplies over ``seconds``."""
    run()
    sync()
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - start)
    return 2.0 * MATRIX**3 / best / 1e9


def _importable(module: str) -> bool:
    """Whether ``module`` imports here: a library that is absent or broken is no candidate (the
    figure lists the libraries that were)."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _matrix() -> Any:
    import numpy as np

    return np.random.default_rng(0).standard_normal((MATRIX, MATRIX), dtype=np.float32)


def _torch_kernel(threads: int) -> tuple[Callable[[], object], str]:
    import torch

    torch.set_num_threads(threads)
    a = torch.from_numpy(_matrix())
    return (lambda: torch.mm(a, a)), f"torch {torch.__version__}"


def _numpy_kernel(threads: int) -> tuple[Callable[[], object], str]:
    import numpy as np  # its BLAS takes the thread count from the environment the parent set

    x = _matrix()
    return (lambda: x @ x), f"numpy {np.__version__}"


def _matmul_graph() -> bytes:
    from onnx import TensorProto, helper

    spec = [MATRIX, MATRIX]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, spec) for n in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, spec)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def _onnxruntime_kernel(threads: int) -> tuple[Callable[[], object], str]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(_matmul_graph(), options, providers=["CPUExecutionProvider"])
    feeds = {"a": _matrix(), "b": _matrix()}
    return (lambda: session.run(None, feeds)), f"onnxruntime {ort.__version__}"


def _openvino_kernel(threads: int) -> tuple[Callable[[], object], str]:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(_matmul_graph()), "CPU",
                                  {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    feeds = {0: _matrix(), 1: _matrix()}
    return (lambda: request.infer(feeds)), f"openvino {ov.__version__}"


_CPU_KERNELS: list[tuple[str, Callable[[int], tuple[Callable[[], object], str]]]] = [
    ("torch", _torch_kernel), ("numpy", _numpy_kernel), ("onnxruntime", _onnxruntime_kernel),
    ("openvino", _openvino_kernel),
]


def _gpu_peak(threads: int) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        raise SystemExit("a GPU peak needs torch with CUDA") from None
    if not torch.cuda.is_available():
        raise SystemExit("a GPU peak needs torch with CUDA")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    a = torch.randn(MATRIX, MATRIX, device="cuda")
    gflops = _best_rate(lambda: torch.mm(a, a), torch.cuda.synchronize, SECONDS)
    return {"gflops": gflops, "library": f"torch {torch.__version__}", "device": torch.cuda.get_device_name(),
            "threads": threads, "size": MATRIX}


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1], int(sys.argv[2]))))
