"""ONNX backend node test suite through the converter: load cases, run one, compare.

Shared by ``scripts/conformance_fx.py`` (the full run) and the sample test in
``plugins/hwkit-torch/tests/test_node_suite_sample.py``.
Comparison follows ``onnx.backend.test.runner.Runner.assert_similar_outputs`` (same shape,
same dtype, ``assert_allclose`` with the case's rtol/atol).
"""

from __future__ import annotations

import re
import traceback
import warnings
from typing import Any

from hwkit.testing.node_suite import load_cases  # noqa: F401 - re-exported for the runners


def _to_torch(x: Any) -> Any:
    import numpy as np
    import onnx

    from hwkit_torch.fx.dtypes import numpy_to_torch

    if isinstance(x, onnx.TensorProto):
        x = onnx.numpy_helper.to_array(x)
    if isinstance(x, list):
        return [_to_torch(e) for e in x]
    if x is None:
        return None
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if isinstance(x, np.ndarray):
        return numpy_to_torch(x)
    return x


def _to_numpy(x: Any, elem_type: int | None = None) -> Any:
    import torch

    from hwkit_torch.fx.dtypes import torch_to_numpy

    if isinstance(x, (list, tuple)):
        return [_to_numpy(e, elem_type) for e in x]
    if isinstance(x, torch.Tensor):
        return torch_to_numpy(x, elem_type)
    return x


def run_case(name: str) -> tuple[str, str, str]:
    """Returns (name, status, message); status is pass | unsupported | error | mismatch."""
    import onnx
    import torch
    from onnx.backend.test.runner import Runner

    from hwkit.errors import UnsupportedOpError
    from hwkit_torch.fx import convert

    torch.set_num_threads(1)
    case = load_cases()[name]
    try:
        gm = convert(case.model, backend="cpu")
    except UnsupportedOpError as e:
        reasons = getattr(e, "reasons", {})
        return name, "unsupported", "; ".join(
            f"{k}{': ' + reasons[k] if k in reasons else ''}" for k in e.ops
        )
    except Exception as e:  # noqa: BLE001 - the runner reports every failure
        return name, "error", f"convert: {type(e).__name__}: {str(e)[:300]}"
    for inputs, expected in case.data_sets:
        try:
            with torch.no_grad():
                outs = gm(*[_to_torch(x) for x in inputs])
            # Sub-byte outputs come back in their carrier dtype; the declared type says so.
            types = [o.type.tensor_type.elem_type if o.type.HasField("tensor_type") else None
                     for o in case.model.graph.output]
            outs = [_to_numpy(o, t) for o, t in zip(outs, types)]
        except Exception as e:  # noqa: BLE001
            tb = traceback.format_exc().strip().splitlines()[-1]
            return name, "error", f"run: {type(e).__name__}: {str(e)[:200]} | {tb[:200]}"
        ref = [onnx.numpy_helper.to_array(r) if isinstance(r, onnx.TensorProto) else r
               for r in expected]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Runner.assert_similar_outputs(ref, outs, rtol=case.rtol, atol=case.atol)
        except AssertionError as e:
            msg = " ".join(str(e).split())
            return name, "mismatch", msg[:300]
        except Exception as e:  # noqa: BLE001
            return name, "mismatch", f"{type(e).__name__}: {str(e)[:200]}"
    return name, "pass", ""


def category(name: str) -> str:
    """The op/category a case belongs to (test_reduce_sum_keepdims_random -> reduce_sum)."""
    n = re.sub(r"^test_", "", name)
    n = re.sub(r"_expanded(_ver\d+)?$", "", n)
    return n.split("_")[0] if not n.startswith(("reduce_", "logsoftmax", "softmax_cross")) else "_".join(n.split("_")[:2])


