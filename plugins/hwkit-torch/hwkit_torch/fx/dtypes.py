"""ONNX <-> torch dtype mapping."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import torch

TP = onnx.TensorProto

ONNX_TO_TORCH: dict[int, torch.dtype] = {
    TP.FLOAT: torch.float32,
    TP.DOUBLE: torch.float64,
    TP.FLOAT16: torch.float16,
    TP.BFLOAT16: torch.bfloat16,
    TP.INT8: torch.int8,
    TP.INT16: torch.int16,
    TP.INT32: torch.int32,
    TP.INT64: torch.int64,
    TP.UINT8: torch.uint8,
    TP.UINT16: torch.uint16,
    TP.UINT32: torch.uint32,
    TP.UINT64: torch.uint64,
    TP.BOOL: torch.bool,
    TP.FLOAT8E4M3FN: torch.float8_e4m3fn,
    TP.FLOAT8E4M3FNUZ: torch.float8_e4m3fnuz,
    TP.FLOAT8E5M2: torch.float8_e5m2,
    TP.FLOAT8E5M2FNUZ: torch.float8_e5m2fnuz,
    TP.FLOAT8E8M0: torch.float8_e8m0fnu,
    TP.COMPLEX64: torch.complex64,
    TP.COMPLEX128: torch.complex128,
}
TORCH_TO_ONNX: dict[torch.dtype, int] = {v: k for k, v in ONNX_TO_TORCH.items()}

# Types torch lacks travel in a wider "carrier" dtype holding the exact values: sub-byte
# integers as int8/uint8, FLOAT4E2M1 as float32. Graph inputs of these types are expected
# in the carrier dtype and outputs come back in it (``torch_to_numpy(t, elem_type)`` turns
# them back into ml_dtypes arrays).
SUBBYTE: dict[int, torch.dtype] = {
    TP.INT4: torch.int8,
    TP.UINT4: torch.uint8,
    TP.INT2: torch.int8,
    TP.UINT2: torch.uint8,
    TP.FLOAT4E2M1: torch.float32,
}
SUBBYTE_RANGE: dict[int, tuple[int, int]] = {
    TP.INT4: (-8, 7), TP.UINT4: (0, 15), TP.INT2: (-2, 1), TP.UINT2: (0, 3),
}
ONNX_TO_TORCH.update(SUBBYTE)

FLOAT8 = {
    torch.float8_e4m3fn,
    torch.float8_e4m3fnuz,
    torch.float8_e5m2,
    torch.float8_e5m2fnuz,
    torch.float8_e8m0fnu,
}
# Unsigned types beyond uint8 exist in torch but most kernels reject them; computation is done
# in int64 (exact for uint16/uint32, and for uint64 values < 2**63) and cast back.
WIDE_UNSIGNED = {torch.uint16, torch.uint32, torch.uint64}


def to_torch(elem_type: int) -> torch.dtype:
    """Torch dtype of an ONNX element type; KeyError when torch has none."""
    return ONNX_TO_TORCH[elem_type]


def name(elem_type: int) -> str:
    return TP.DataType.Name(elem_type)


def is_float(dt: torch.dtype) -> bool:
    return dt.is_floating_point


def numpy_to_torch(a: np.ndarray) -> torch.Tensor:
    """Tensor from a numpy array, including ml_dtypes bfloat16/float8 (by bit view)."""
    dn = a.dtype.name
    special = {
        "bfloat16": (np.uint16, torch.bfloat16),
        "float8_e4m3fn": (np.uint8, torch.float8_e4m3fn),
        "float8_e4m3fnuz": (np.uint8, torch.float8_e4m3fnuz),
        "float8_e5m2": (np.uint8, torch.float8_e5m2),
        "float8_e5m2fnuz": (np.uint8, torch.float8_e5m2fnuz),
        "float8_e8m0fnu": (np.uint8, torch.float8_e8m0fnu),
    }
    if dn in special:
        view, tdt = special[dn]
        return torch.from_numpy(np.ascontiguousarray(a).view(view).copy()).view(tdt)
    carriers = {"int4": np.int8, "uint4": np.uint8, "int2": np.int8, "uint2": np.uint8,
                "float4_e2m1fn": np.float32}
    if dn in carriers:
        return torch.from_numpy(a.astype(carriers[dn]))
    if a.dtype == object:
        raise TypeError("string tensors are not supported")
    return torch.from_numpy(np.array(a, copy=True))


def torch_to_numpy(t: torch.Tensor, elem_type: int | None = None) -> np.ndarray:
    """Numpy array from a tensor; bfloat16/float8 become ml_dtypes arrays, and so do carriers
    of sub-byte types when ``elem_type`` (the ONNX type the graph declares) says so."""
    import ml_dtypes

    t = t.detach().cpu()
    if elem_type in SUBBYTE:
        targets: dict[int, Any] = {TP.INT4: ml_dtypes.int4, TP.UINT4: ml_dtypes.uint4, TP.INT2: ml_dtypes.int2,
                                   TP.UINT2: ml_dtypes.uint2, TP.FLOAT4E2M1: ml_dtypes.float4_e2m1fn}
        return t.contiguous().numpy().astype(targets[elem_type])
    special = {
        torch.bfloat16: (torch.int16, ml_dtypes.bfloat16),
        torch.float8_e4m3fn: (torch.uint8, ml_dtypes.float8_e4m3fn),
        torch.float8_e4m3fnuz: (torch.uint8, ml_dtypes.float8_e4m3fnuz),
        torch.float8_e5m2: (torch.uint8, ml_dtypes.float8_e5m2),
        torch.float8_e5m2fnuz: (torch.uint8, ml_dtypes.float8_e5m2fnuz),
        torch.float8_e8m0fnu: (torch.uint8, ml_dtypes.float8_e8m0fnu),
    }
    if t.dtype in special:
        view, ndt = special[t.dtype]
        return t.contiguous().view(view).numpy().view(ndt)
    return t.contiguous().numpy()
