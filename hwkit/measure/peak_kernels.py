"""The matrix multiplies ``hwkit peak`` times, per precision, and which precisions a device has.

Run only in the peak's child process (``hwkit.measure.peak``). On the CPU each precision is
timed with every installed library that reaches it natively, and the best counts: bf16 through
torch (oneDNN: AVX512-BF16 / AMX) and OpenVINO's bf16 hint, fp16 the same way, int8 through
``torch._int_mm`` and a QDQ matmul on ONNX Runtime and OpenVINO (their int8 kernels: VNNI /
AMX-INT8). A kernel that would not really run the precision (OpenVINO turns an f16 hint into
bf16 on CPUs without fp16 arithmetic) is no candidate. A precision the CPU has no instructions
for is not measured at all: libraries emulate it (torch's fp16 matmul ran at 0.13 GFLOP/s on an
AVX512-BF16 Xeon) and such a figure is no peak.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

MATRIX = 2048  # the square matmul's size: big enough for every library to reach its best kernel

Kernel = Callable[[int], "tuple[Callable[[], object], str] | None"]  # threads -> (run, label) or None

# /proc/cpuinfo flags (x86 "flags", Arm "Features") that give a precision matmul instructions.
CPU_FLAGS: Mapping[str, tuple[str, ...]] = {
    "bf16": ("avx512_bf16", "amx_bf16", "bf16"),
    "fp16": ("avx512_fp16", "amx_fp16", "asimdhp"),
    "int8": ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"),
}


def cpu_lacks(precision: str, flags: frozenset[str] | None = None) -> str | None:
    """Why this CPU has no ``precision`` matmul instructions, or None when it has them (fp32:
    always). ``flags``: the CPU's feature flags (read from /proc/cpuinfo when not given)."""
    if precision == "fp32":
        return None
    wanted = CPU_FLAGS[precision]
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return f"cannot tell whether this CPU has {precision} instructions (no /proc/cpuinfo flags here)"
    if flags.isdisjoint(wanted):
        return f"this CPU has no {precision} matmul instructions (none of {', '.join(wanted)})"
    return None


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        return frozenset()
    return frozenset()


def importable(module: str) -> bool:
    """Whether ``module`` imports here: a library that is absent or broken is no candidate (the
    figure lists the libraries that were)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def matrix() -> Any:
    import numpy as np

    return np.random.default_rng(0).standard_normal((MATRIX, MATRIX), dtype=np.float32)


def _torch_kernel(dtype_name: str) -> Kernel:
    def make(threads: int) -> tuple[Callable[[], object], str]:
        import torch

        torch.set_num_threads(threads)
        a = torch.from_numpy(matrix()).to(getattr(torch, dtype_name))
        return (lambda: torch.mm(a, a)), f"torch {torch.__version__}"
    return make


def _torch_int8(threads: int) -> tuple[Callable[[], object], str] | None:
    import torch

    if not hasattr(torch, "_int_mm"):  # added in torch 2.2
        return None
    torch.set_num_threads(threads)
    a = torch.from_numpy(matrix()).clamp(-3, 3).mul(40).to(torch.int8)
    return (lambda: torch._int_mm(a, a)), f"torch {torch.__version__} _int_mm"


def _numpy_kernel(threads: int) -> tuple[Callable[[], object], str]:
    import numpy as np  # its BLAS takes the thread count from the environment the parent set

    x = matrix()
    return (lambda: x @ x), f"numpy {np.__version__}"


def matmul_graph(quantized: bool = False) -> bytes:
    """c = a @ b in fp32, or c = a @ W with a quantised (uint8, per-tensor) and W an int8
    constant through QuantizeLinear/DequantizeLinear: the QDQ pattern hwkit's int8 graphs use,
    which both runtimes fuse into one int8 matmul."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    spec = [MATRIX, MATRIX]
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, spec)
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, spec)
    if not quantized:
        graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                                  [a, helper.make_tensor_value_info("b", TensorProto.FLOAT, spec)], [c])
    else:
        weights = np.clip(matrix() * 40, -127, 127).astype(np.int8)
        constants = [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array(0.05, np.float32), "sa"),
                     numpy_helper.from_array(np.array(128, np.uint8), "za"),
                     numpy_helper.from_array(np.array(0.01, np.float32), "sw")]
        nodes = [helper.make_node("QuantizeLinear", ["a", "sa", "za"], ["aq"]),
                 helper.make_node("DequantizeLinear", ["aq", "sa", "za"], ["ad"]),
                 helper.make_node("DequantizeLinear", ["w", "sw"], ["wd"]),
                 helper.make_node("MatMul", ["ad", "wd"], ["c"])]
        graph = helper.make_graph(nodes, "qdq_matmul", [a], [c], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def _onnxruntime_kernel(quantized: bool) -> Kernel:
    def make(threads: int) -> tuple[Callable[[], object], str]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(matmul_graph(quantized), options, providers=["CPUExecutionProvider"])
        feeds = {"a": matrix()} if quantized else {"a": matrix(), "b": matrix()}
        return (lambda: session.run(None, feeds)), f"onnxruntime {ort.__version__}{' QDQ' if quantized else ''}"
    return make


def _openvino_kernel(hint: str, quantized: bool = False) -> Kernel:
    def make(threads: int) -> tuple[Callable[[], object], str] | None:
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(core.read_model(matmul_graph(quantized)), "CPU",
                                      {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": hint})
        if compiled.get_property("INFERENCE_PRECISION_HINT") != getattr(ov.Type, hint):
            return None  # OpenVINO chose another precision (f16 becomes bf16 without fp16 arithmetic)
        request = compiled.create_infer_request()
        feeds = {0: matrix()} if quantized else {0: matrix(), 1: matrix()}
        label = "QDQ" if quantized else hint
        return (lambda: request.infer(feeds)), f"openvino {ov.__version__} {label}"
    return make


# Per precision: (module that must import, kernel). fp32 keeps the libraries of the old figure.
CPU_KERNELS: Mapping[str, list[tuple[str, Kernel]]] = {
    "fp32": [("torch", _torch_kernel("float32")), ("numpy", _numpy_kernel),
             ("onnxruntime", _onnxruntime_kernel(False)), ("openvino", _openvino_kernel("f32"))],
    "bf16": [("torch", _torch_kernel("bfloat16")), ("openvino", _openvino_kernel("bf16"))],
    "fp16": [("torch", _torch_kernel("float16")), ("openvino", _openvino_kernel("f16"))],
    "int8": [("torch", _torch_int8), ("onnxruntime", _onnxruntime_kernel(True)),
             ("openvino", _openvino_kernel("f32", quantized=True))],
}


def gpu_kernel(precision: str) -> tuple[Callable[[], object], Callable[[], object], str] | str:
    """(run, synchronize, label) of torch's ``precision`` matmul on the GPU, or why the GPU
    lacks it."""
    import torch

    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        return f"{torch.cuda.get_device_name()} has no bf16 matmul"
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    a = torch.randn(MATRIX, MATRIX, device="cuda")
    label = f"torch {torch.__version__}"
    if precision == "int8":
        if torch.cuda.get_device_capability() < (7, 5):  # int8 tensor cores from Turing on
            return f"{torch.cuda.get_device_name()} has no int8 tensor cores (compute capability below 7.5)"
        q = a.clamp(-3, 3).mul(40).to(torch.int8)
        return (lambda: torch._int_mm(q, q)), torch.cuda.synchronize, f"{label} _int_mm"
    x = a.to({"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision])
    return (lambda: torch.mm(x, x)), torch.cuda.synchronize, label
