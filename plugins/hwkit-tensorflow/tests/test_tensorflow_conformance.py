"""hwkit's conformance kit for both backends of hwkit-tensorflow."""

from __future__ import annotations

from hwkit.testing import BackendConformance

from tensorflow_graphs import skip_without_conversion_stack

skip_without_conversion_stack()


class TestTensorFlowConformance(BackendConformance):
    backend = "tensorflow"


class TestLiteRtConformance(BackendConformance):
    backend = "litert"
