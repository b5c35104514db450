"""The precision part of the conformance kit (``BackendConformance`` inherits it): what a
backend declares in ``Backend.precisions`` is well formed, every precision it declares runs
and stays within that precision's tolerance profile of the reference, and every one it does not
declare is refused cleanly, with its reason, before anything compiles. int8 runs hwkit's
quantised graph of the built-in mlp, compiled at fp32, and is held to a cosine similarity with
fp32 (``INT8_MIN_COSINE``) rather than the elementwise profile."""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np
import pytest

import hwkit
from hwkit.api import precision_support
from hwkit.backend import PRECISIONS, Device, PrecisionSupport
from hwkit.errors import OptionError
from hwkit.model import Model
from hwkit.parity.agreement import compare_outputs
from hwkit.parity.tolerance import tolerance
from hwkit.plugins import BackendInfo

PRECISION_MODEL = "mlp"  # small enough to compile at every precision on any backend
INT8_MIN_COSINE = 0.98  # the quantised mlp against fp32: 0.994 on onnxruntime, openvino and cpu here


class PrecisionConformance:
    """Mixed into ``BackendConformance``: uses its ``backend_info`` and ``target`` fixtures and
    ``compile`` (with the class's ``options``)."""


    def compile(self, model: Any, info: BackendInfo, device: Device, **options: Any) -> Any:
        raise NotImplementedError  # BackendConformance.compile

    def test_precisions_are_declared_well(self, backend_info: BackendInfo, target: Device) -> None:
        declared = backend_info.runtime.precisions(target)
        assert all(p in PRECISIONS for p in declared), f"precisions() names unknown precisions: {sorted(declared)}"
        for precision, support in declared.items():
            assert isinstance(support, PrecisionSupport), f"{precision}: {support!r} is not a PrecisionSupport"
            assert not (support.unsupported and support.emulated), f"{precision} is both unsupported and emulated"
        assert precision_support(backend_info, target, "fp32").supported, "every backend must run fp32"

    @pytest.mark.parametrize("precision", ["fp16", "bf16", "int8"])
    def test_declared_precision_runs_within_its_profile(self, precision: str, backend_info: BackendInfo,
                                                        target: Device) -> None:
        support = precision_support(backend_info, target, precision)
        if not support.supported:
            pytest.skip(f"{backend_info.name} does not run {precision} on {target.name}: {support.unsupported}")
        model = Model.builtin(PRECISION_MODEL)
        inputs = model.make_inputs(seed=0)
        with self.compile(model, backend_info, target, precision="fp32") as exe:
            expected = exe.run(inputs)
        if precision == "int8":
            if importlib.util.find_spec("onnxruntime") is None:
                pytest.skip("int8 needs hwkit's quantiser, which needs onnxruntime")
            from hwkit.model.quantize import quantize_int8

            model = quantize_int8(model, seed=0).model
        options = {} if precision == "int8" else {"precision": precision}
        with self.compile(model, backend_info, target, **options) as exe:
            got = exe.run(inputs)
        for spec in model.outputs:  # the graph's inputs and outputs stay as declared, whatever it computes in
            assert np.asarray(got[spec.name]).dtype.name == spec.dtype, (
                f"{precision}: output '{spec.name}' is {np.asarray(got[spec.name]).dtype}, declared {spec.dtype}")
        for a in compare_outputs(expected, got, tolerance(precision)):
            # int8's error depends on the calibration and the model more than on the backend: the
            # kit asks only that it computes the same function (cosine); fp16/bf16 keep their profile.
            close = a.cosine >= INT8_MIN_COSINE if precision == "int8" else a.passed
            assert close and math.isfinite(a.max_abs), (
                f"{precision} on {target.name}: output '{a.name}' differs from fp32 by {a.max_abs:.3g} "
                f"(cosine {a.cosine:.6f}), beyond the {precision} profile")

    @pytest.mark.parametrize("precision", ["fp16", "bf16"])
    def test_undeclared_precision_is_refused_with_its_reason(self, precision: str, backend_info: BackendInfo,
                                                             target: Device) -> None:
        support = precision_support(backend_info, target, precision)
        if support.supported:
            pytest.skip(f"{backend_info.name} runs {precision} on {target.name}")
        assert support.unsupported.strip(), f"{precision} is unsupported without a reason"
        with pytest.raises(OptionError, match=f"cannot run {precision} on"):
            hwkit.compile(PRECISION_MODEL, backend_info.name, device=target, precision=precision)
