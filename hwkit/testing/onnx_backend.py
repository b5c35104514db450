"""Any hwkit backend as an ``onnx.backend.base.Backend``, so that ONNX's own backend test suite
(``onnx.backend.test``) can run against it.

::

    from hwkit.testing.onnx_backend import make_onnx_backend
    import onnx.backend.test

    backend_test = onnx.backend.test.BackendTest(make_onnx_backend("openvino"), __name__)
    globals().update(backend_test.enable_report().test_cases)

``prepare`` is ``hwkit.compile`` (so the model goes through hwkit's loading and checks exactly as
it does for users); ``BackendRep.run`` returns the outputs as a list in the graph's output order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import onnx.backend.base

import hwkit
from hwkit.api import pick_device
from hwkit.backend import Device, Executable
from hwkit.errors import BackendUnavailableError, ModelError
from hwkit.plugins import registry

# ONNX names device types "CPU" and "CUDA"; hwkit devices carry a kind instead.
_ONNX_KINDS = {"CPU": "cpu", "CUDA": "gpu"}


class HwkitBackendRep(onnx.backend.base.BackendRep):
    """A compiled hwkit Executable behind ONNX's BackendRep interface."""

    def __init__(self, executable: Executable) -> None:
        self.executable = executable
        proto_inputs = [v.name for v in executable.model.proto.graph.input]
        fed = {s.name for s in executable.model.inputs}
        # ONNX passes inputs positionally in graph.input order, which may include initializers
        # (inputs with defaults); hwkit feeds only the non-initializer ones.
        self._positional = proto_inputs
        self._fed = fed

    # onnx annotates tuple[Any, ...], but its runner takes any sequence (list(rep.run(...))) and
    # backends (onnxruntime's too) return lists; hwkit keeps the list it documents.
    def run(self, inputs: Any, **kwargs: Any) -> list[np.ndarray]:  # type: ignore[override]  # noqa: ARG002
        """Run once; ``inputs`` is a list (graph input order), a dict, or one array."""
        if isinstance(inputs, Mapping):
            named = dict(inputs)
        else:
            if isinstance(inputs, (np.ndarray, np.generic)):
                inputs = [inputs]
            named = dict(zip(self._positional, inputs))
        feeds = {name: _feed(value) for name, value in named.items() if name in self._fed}
        outputs = self.executable.run(feeds)
        return [outputs[spec.name] for spec in self.executable.model.outputs]


def _feed(value: Any) -> Any:
    """Arrays as arrays (numpy scalars too); sequences as lists of arrays; None (optional) kept."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [np.asarray(item) for item in value]
    return np.asarray(value)


def make_onnx_backend(name: str, device: str | Device | None = None) -> type[onnx.backend.base.Backend]:
    """An ``onnx.backend.base.Backend`` class running every model through hwkit backend ``name``.

    Args:
        name: an installed hwkit backend ("onnxruntime").
        device: pin a device of that backend; None maps ONNX's "CPU"/"CUDA" to the backend's
            first device of kind cpu/gpu.

    Options for the backend can be passed as keyword arguments of ``prepare``.
    """

    def _device(onnx_device: str) -> Device:
        info = registry().get(name)
        if device is not None:
            return pick_device(info, device)
        kind = _ONNX_KINDS.get(onnx_device.split(":")[0].upper())
        for candidate in info.devices:
            if candidate.kind == kind:
                return candidate
        raise BackendUnavailableError(
            f"backend '{name}' has no {onnx_device} device; its devices: "
            + ", ".join(f"{d.name} ({d.kind})" for d in info.devices)
        )

    class HwkitOnnxBackend(onnx.backend.base.Backend):
        hwkit_backend = name

        @classmethod
        def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> HwkitBackendRep:
            return HwkitBackendRep(hwkit.compile(model, name, device=_device(device), **kwargs))

        @classmethod
        def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",  # type: ignore[override]
                      **kwargs: Any) -> list[np.ndarray]:  # a list: see HwkitBackendRep.run
            with cls.prepare(model, device, **kwargs).executable as executable:
                return HwkitBackendRep(executable).run(inputs)

        @classmethod
        def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",  # type: ignore[override]
                     outputs_info: Sequence[tuple[Any, tuple[int, ...]]] | None = None,
                     **kwargs: Any) -> list[np.ndarray]:  # a list: see HwkitBackendRep.run
            """Wrap ``node`` in a one-node graph and run it (ONNX's run_node contract)."""
            if outputs_info is None:
                raise ModelError("run_node needs outputs_info (dtype and shape of each output) "
                                 "to build a graph around the node")
            arrays = [np.asarray(x) for x in inputs]
            graph_inputs = [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                            for n, a in zip(node.input, arrays) if n]
            graph_outputs = [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dt)), shape)
                             for n, (dt, shape) in zip(node.output, outputs_info) if n]
            opset = kwargs.pop("opset_version", None)
            imports = [onnx.helper.make_opsetid(node.domain, opset or onnx.defs.onnx_opset_version())]
            model = onnx.helper.make_model(onnx.helper.make_graph([node], "run_node", graph_inputs, graph_outputs),
                                           opset_imports=imports)
            return cls.run_model(model, arrays, device, **kwargs)

        @classmethod
        def supports_device(cls, device: str) -> bool:
            try:
                _device(device)
            except hwkit.HwkitError:
                return False
            return True

    HwkitOnnxBackend.__name__ = HwkitOnnxBackend.__qualname__ = f"Hwkit_{name}_OnnxBackend"
    return HwkitOnnxBackend
