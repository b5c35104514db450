"""hwkit's conformance kit for both backends of hwkit-tensorflow."""

from __future__ import annotations

from hwkit.testing import BackendConformance

from tensorflow_graphs import _shared_cache, conversions, skip_without_conversion_stack, tensorflow_threads

skip_without_conversion_stack()
__all__ = ["_shared_cache", "conversions", "tensorflow_threads"]  # fixtures, used by name


class TestTensorFlowConformance(BackendConformance):
    backend = "tensorflow"


class TestLiteRtConformance(BackendConformance):
    backend = "litert"
