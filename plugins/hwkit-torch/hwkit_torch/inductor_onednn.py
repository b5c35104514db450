"""Under compile=fast on the CPU, Inductor's freezing packs fp32 linear layers for oneDNN, not MKL.

Inductor's freezing pass packs each constant-weight linear itself: for fp32 onto MKL
(``mkl._mkl_linear``) whenever torch has MKL, onto oneDNN (``mkldnn._linear_pointwise``) only for
reduced precision, dynamic batch sizes or AOT compilation (torch 2.13,
``torch._inductor.fx_passes.mkldnn_fusion.CpuMkldnnDeviceOp``). MKL runs without its AVX-512
kernels on AMD CPUs (hwkit_torch/onednn.py: twice oneDNN's time). Packed onto oneDNN by Inductor
itself, the linears also get Inductor's oneDNN post-op fusions (Gelu, residual add) and are
called from Inductor's C++ wrapper without a Python op in between: the built-in encoder ran 8 %
faster than through hwkit's own custom op (docs/torch-backends.md). Both are fp32 GEMMs.

``fp32_linears_on_onednn`` takes oneDNN's branch of Inductor's choice while a call compiles;
``cache_key()`` goes into Inductor's config with it, so that Inductor's FX graph cache never
serves a graph compiled the other way (it keys on the config, custom passes by their uuid).
Older torch releases (``hwkit-torch`` allows torch>=2.4) lack these Inductor internals:
``available()`` is False there and Inductor's own choice stands (docs/torch-backends.md).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any


@functools.cache
def available() -> bool:
    """Whether this torch has the Inductor internals patched here (torch 2.13 does)."""
    try:
        from torch._inductor.custom_graph_pass import CustomGraphPass  # noqa: F401
        from torch._inductor.fx_passes import mkldnn_fusion
    except ImportError:
        return False
    device_op = getattr(mkldnn_fusion, "CpuMkldnnDeviceOp", None)
    return all(hasattr(device_op, name) for name in ("pack_linear_weight", "pack_linear"))


@functools.cache
def cache_key() -> Any:
    """A post-grad pass that changes nothing: its uuid marks graphs compiled with the choice above."""
    from torch._inductor.custom_graph_pass import CustomGraphPass

    class CacheKey(CustomGraphPass):
        def __call__(self, graph: Any) -> None:
            return None

        def uuid(self) -> str:
            return "hwkit_torch.inductor_onednn: fp32 linears packed for oneDNN, v1"

    return CacheKey()


@contextlib.contextmanager
def fp32_linears_on_onednn() -> Iterator[None]:
    """Inductor's linear packing takes its oneDNN branch for fp32 weights while this is open."""
    from torch._inductor.fx_passes import mkldnn_fusion

    device_op = mkldnn_fusion.CpuMkldnnDeviceOp
    pack_weight, pack = device_op.pack_linear_weight, device_op.pack_linear

    # ``is_lp_weight`` only picks the op (oneDNN when true); the weight keeps its fp32 dtype.
    def pack_linear_weight(self: Any, graph: Any, is_lp_weight: bool, *args: Any) -> Any:
        return pack_weight(self, graph, True, *args)

    def pack_linear(self: Any, graph: Any, is_lp_weight: bool, *args: Any) -> Any:
        return pack(self, graph, True, *args)

    device_op.pack_linear_weight, device_op.pack_linear = pack_linear_weight, pack_linear  # type: ignore[method-assign]
    try:
        yield
    finally:
        device_op.pack_linear_weight, device_op.pack_linear = pack_weight, pack  # type: ignore[method-assign]
