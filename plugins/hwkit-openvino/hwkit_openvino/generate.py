"""The KV cache kept in OpenVINO tensors while a decoder generates (``hwkit.backend.Stepper``).

Two infer requests take turns: the present tensors one request produced are set, without a
copy, as the past inputs of the other, so no request ever writes into the tensors it reads.
Only the requested outputs (logits) are copied to numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np


class OvStepSession:
    def __init__(self, compiled: Any, ports: Mapping[str, Any], fed: Sequence[str], state: Mapping[str, str],
                 initial: Mapping[str, np.ndarray], outputs: Sequence[str],
                 sdk_errors: Callable[[], AbstractContextManager[None]]) -> None:
        import openvino as ov

        self.ov = ov
        self.requests = [compiled.create_infer_request(), compiled.create_infer_request()]
        self.turn = 0
        self.ports = dict(ports)
        self.fed = set(fed)  # OpenVINO drops graph inputs nothing uses: set only those it kept
        self.state = dict(state)
        self.outputs = list(outputs)
        self.sdk_errors = sdk_errors
        self.values = {past: ov.Tensor(np.ascontiguousarray(array)) for past, array in initial.items()}

    def step(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = self.requests[self.turn]
        self.turn ^= 1
        with self.sdk_errors():
            for name, array in feeds.items():
                if name in self.fed:
                    request.set_tensor(name, self.ov.Tensor(np.ascontiguousarray(array), shared_memory=True))
            for name, tensor in self.values.items():
                if name in self.fed:
                    request.set_tensor(name, tensor)
            request.infer()
            self.values = {past: request.get_tensor(self.ports[present]) for present, past in self.state.items()}
            return {name: np.array(request.get_tensor(self.ports[name]).data, copy=True) for name in self.outputs}

    def state_bytes(self) -> int:
        return sum(int(t.get_byte_size()) for t in self.values.values())

    def close(self) -> None:
        self.values = {}
        self.requests = []
