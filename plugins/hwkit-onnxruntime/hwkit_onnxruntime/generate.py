"""The KV cache kept in ONNX Runtime's own values while a decoder generates (``hwkit.backend.Stepper``).

Each step binds the token inputs from host arrays, the previous step's present outputs as the
past inputs (OrtValues on the session's device, never copied to numpy), and lets ORT allocate the
new presents on that device; only the requested outputs (logits) come back to the host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


class OrtStepSession:
    def __init__(self, session: Any, device: str, state: Mapping[str, str], initial: Mapping[str, np.ndarray],
                 outputs: Sequence[str], sdk_errors: tuple[type[BaseException], ...],
                 translate: Callable[[BaseException], Exception]) -> None:
        import onnxruntime as ort

        kind, _, index = device.partition(":")
        # CUDA (and TensorRT) keep the cache in device memory; other providers in host OrtValues.
        self.device = ("cuda", int(index or 0)) if kind in ("cuda", "tensorrt") else ("cpu", 0)
        self.session = session
        self.binding = session.io_binding()
        self.state = dict(state)
        self.outputs = list(outputs)
        self.names = [*self.outputs, *self.state]
        self.sdk_errors, self.translate = sdk_errors, translate
        self.values = {past: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), *self.device)
                       for past, array in initial.items()}

    def step(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        binding = self.binding
        try:
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
            for name, array in feeds.items():
                binding.bind_cpu_input(name, array)
            for name, value in self.values.items():
                binding.bind_ortvalue_input(name, value)
            for name in self.outputs:
                binding.bind_output(name, "cpu")
            for name in self.state:
                binding.bind_output(name, *self.device)
            self.session.run_with_iobinding(binding)
            values = dict(zip(self.names, binding.get_outputs()))
        except self.sdk_errors as e:
            raise self.translate(e) from e
        self.values = {past: values[present] for present, past in self.state.items()}
        return {name: values[name].numpy() for name in self.outputs}

    def state_bytes(self) -> int:
        return sum(int(np.prod(v.shape())) * _itemsize(v) for v in self.values.values())

    def close(self) -> None:
        self.values = {}
        self.binding.clear_binding_inputs()
        self.binding.clear_binding_outputs()


_SIZES = {"tensor(float)": 4, "tensor(float16)": 2, "tensor(bfloat16)": 2, "tensor(double)": 8}


def _itemsize(value: Any) -> int:
    return _SIZES.get(value.data_type(), 4)
