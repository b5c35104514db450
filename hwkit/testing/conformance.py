"""The conformance kit: what every hwkit backend must do, as a pytest class to subclass.

A plugin's tests need one line::

    from hwkit.testing import BackendConformance

    class TestMine(BackendConformance):
        backend = "mine"

Every check compiles through the public API (``hwkit.compile``), as users do, and compares with
a reference runtime (ONNX Runtime used directly when installed, else ONNX's
``ReferenceEvaluator``). An unavailable backend or an absent device skips with the reason; a
backend that is not installed, or whose plugin failed to load, fails: the kit cannot test it.
Class attributes tune the kit for a backend (tolerances, device, options, models).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import hwkit
from hwkit.backend import Device, Executable
from hwkit.errors import (
    BackendNotFoundError,
    BackendUnavailableError,
    ExecutionError,
    ModelError,
    OptionError,
    UnsupportedOpError,
)
from hwkit.api import pick_device
from hwkit.model import Model, zoo
from hwkit.plugins import BackendInfo, registry
from hwkit.testing.precision_kit import PrecisionConformance

BUILTIN_MODELS = tuple(zoo.BUILTIN_MODELS)


# -- helpers for tests of backends ------------------------------------------------------------

def require_backend(name: str) -> BackendInfo:
    """The installed backend ``name``; the calling test is skipped, with the reason, when it is
    missing or cannot run here (never silently passed)."""
    info = registry().backends.get(name)
    if info is None:
        pytest.skip(f"backend '{name}' is not installed")
    if info.status != "available":
        pytest.skip(f"backend '{name}' is {info.status}: {info.reason}")
    return info


# -- reference outputs and small graphs -------------------------------------------------------

def reference_outputs(model: Model, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs from ONNX Runtime used directly (no hwkit plugin in between), or from
    onnx's ReferenceEvaluator when onnxruntime is not installed."""
    names = [s.name for s in model.outputs]
    try:
        import onnxruntime as ort
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        values = ReferenceEvaluator(model.proto).run(None, dict(inputs))
    else:
        session = ort.InferenceSession(model.serialized, providers=["CPUExecutionProvider"])
        values = session.run(names, dict(inputs))
    return {name: np.asarray(v) for name, v in zip(names, values)}


def _model(nodes: list[onnx.NodeProto], name: str, inputs: list[onnx.ValueInfoProto],
           outputs: list[onnx.ValueInfoProto], initializers: list[onnx.TensorProto] | None = None,
           opsets: dict[str, int] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers or [])
    imports = [helper.make_opsetid(domain, v) for domain, v in (opsets or {"": 17}).items()]
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8  # readable by every runtime of the last years
    return model


def small_graphs() -> dict[str, onnx.ModelProto]:
    """Hand-built graphs covering initializers, dynamic dims, integer tensors and several outputs."""
    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 6)).astype(np.float32)
    graphs = {
        "add_relu": _model(
            [helper.make_node("Add", ["x", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])],
            "add_relu", [helper.make_tensor_value_info("x", f32, [2, 4])],
            [helper.make_tensor_value_info("y", f32, [2, 4])],
            [helper.make_tensor("b", f32, [4], [0.5, -0.5, 1.0, -1.0])]),
        "matmul_softmax_dynamic": _model(
            [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Softmax", ["h"], ["y"], axis=-1)],
            "matmul_softmax", [helper.make_tensor_value_info("x", f32, ["batch", 8])],
            [helper.make_tensor_value_info("y", f32, ["batch", 6])],
            [onnx.numpy_helper.from_array(w, "w")]),
        "gather_two_outputs": _model(
            [helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
             helper.make_node("ReduceSum", ["rows", "axes"], ["total"], keepdims=0),
             helper.make_node("Shape", ["ids"], ["shape"])],
            "gather", [helper.make_tensor_value_info("ids", i64, [3])],
            [helper.make_tensor_value_info("total", f32, [6]), helper.make_tensor_value_info("shape", i64, [1])],
            [onnx.numpy_helper.from_array(w, "table"), onnx.numpy_helper.from_array(np.array([0], np.int64), "axes")]),
    }
    return graphs


def unknown_ops_graph() -> onnx.ModelProto:
    """A valid graph whose two ops come from a custom domain that no backend implements."""
    f32 = TensorProto.FLOAT
    return _model(
        [helper.make_node("Frobnicate", ["x"], ["t"], domain="com.example", name="frob"),
         helper.make_node("Twiddle", ["t"], ["y"], domain="com.example", name="twid")],
        "custom", [helper.make_tensor_value_info("x", f32, [2])], [helper.make_tensor_value_info("y", f32, [2])],
        opsets={"": 17, "com.example": 1})


def assert_outputs_match(model: Model, got: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray],
                         rtol: float, atol: float, label: str = "") -> None:
    """Same output names, dtypes and shapes as the model says, values within tolerance."""
    assert list(got) == [s.name for s in model.outputs], (
        f"{label}: outputs {list(got)} are not the model's outputs {[s.name for s in model.outputs]} in order")
    for spec in model.outputs:
        value = got[spec.name]
        assert isinstance(value, np.ndarray), f"{label}: output '{spec.name}' is {type(value).__name__}, not a numpy array"
        assert value.dtype.name == spec.dtype, f"{label}: output '{spec.name}' is {value.dtype}, the model says {spec.dtype}"
        assert value.shape == expected[spec.name].shape, (
            f"{label}: output '{spec.name}' has shape {value.shape}, the reference {expected[spec.name].shape}")
        np.testing.assert_allclose(value, expected[spec.name], rtol=rtol, atol=atol,
                                   err_msg=f"{label}: output '{spec.name}' differs from the reference runtime")


# -- the kit ----------------------------------------------------------------------------------

class BackendConformance(PrecisionConformance):
    """Subclass with ``backend = "NAME"``; pytest then runs every check against that backend
    (and the precision checks of ``hwkit.testing.precision_kit``).

    Class attributes:
        backend: the backend's name (None: taken from ``pytest --hwkit-backend NAME``).
        device: the device to test (None: the backend's first device); the fallback check
            covers every device.
        options: options passed to every compile (e.g. ``{"hint": "throughput"}``).
        rtol / atol: tolerance against the reference runtime; widen them for reduced precision.
        models: which built-in models to compare (they need torch to export, once).
        repeat_exact: whether two runs on the same inputs must be bit-identical (else within
            rtol/atol), for runtimes with non-deterministic reductions.
    """

    backend: ClassVar[str | None] = None
    device: ClassVar[str | None] = None
    options: ClassVar[dict[str, Any]] = {}
    rtol: ClassVar[float] = 1e-3
    atol: ClassVar[float] = 1e-4
    models: ClassVar[tuple[str, ...]] = BUILTIN_MODELS
    repeat_exact: ClassVar[bool] = True

    # -- fixtures ---------------------------------------------------------------------------

    @pytest.fixture
    def backend_info(self, request: pytest.FixtureRequest) -> BackendInfo:
        """The backend under test; skip if it cannot run here, fail if it is not installed."""
        name = self.backend or request.config.getoption("hwkit_backend", None)
        if not name:
            pytest.skip("no backend to test: set `backend = \"NAME\"` on the class or pass --hwkit-backend NAME")
        try:
            return registry().get(name)
        except BackendUnavailableError as e:
            info = registry().backends[name]
            if info.status == "failed":  # a broken plugin is the plugin's bug, not the machine's
                pytest.fail(f"backend '{name}' failed to load: {info.reason}", pytrace=False)
            pytest.skip(str(e))
        except BackendNotFoundError as e:
            pytest.fail(f"{e} (install the plugin first, e.g. pip install -e . in its folder)", pytrace=False)
        raise AssertionError("unreachable")  # pragma: no cover - every branch returns or leaves

    @pytest.fixture
    def target(self, backend_info: BackendInfo, request: pytest.FixtureRequest) -> Device:
        """The device to test on; skip if the requested one is absent here."""
        wanted = self.device or request.config.getoption("hwkit_device", None)
        try:
            return pick_device(backend_info, wanted)
        except BackendUnavailableError as e:
            pytest.skip(f"{e} (here)")
        raise AssertionError("unreachable")  # pragma: no cover

    def compile(self, model: Any, info: BackendInfo, device: Device, **options: Any) -> Executable:
        """``hwkit.compile`` with the class's options; what every check uses."""
        return hwkit.compile(model, info.name, device=device, **{**self.options, **options})

    # -- discovery --------------------------------------------------------------------------

    def test_devices_never_raise(self, backend_info: BackendInfo) -> None:
        backend = backend_info.backend
        assert backend is not None
        reason = backend.unavailable_reason()
        assert reason is None or isinstance(reason, str), f"unavailable_reason() returned {reason!r}"
        for _ in range(2):  # asked again (bench, CLI and registry all ask): same answer, no error
            devices = backend.devices()
            assert isinstance(devices, list), f"devices() returned {type(devices).__name__}, not a list"
            assert all(isinstance(d, Device) for d in devices), f"devices() returned non-Device items: {devices!r}"
            assert devices == backend_info.devices, "devices() changed between two calls"
        assert len({d.name for d in devices}) == len(devices), f"two devices share a name: {devices!r}"
        assert all(d.kind in ("cpu", "gpu", "npu", "other") for d in devices), f"unknown device kind in {devices!r}"
        versions = backend.versions()
        assert isinstance(versions, dict) and all(isinstance(v, str) for v in versions.values()), (
            f"versions() must map library names to version strings, got {versions!r}")

    # -- correctness ------------------------------------------------------------------------

    @pytest.mark.parametrize("graph", list(small_graphs()))
    def test_small_graph_matches_reference(self, graph: str, backend_info: BackendInfo, target: Device) -> None:
        model = Model.load(small_graphs()[graph])
        with self.compile(model, backend_info, target) as exe:
            for batch in ((1, 3) if "dynamic" in graph else (None,)):
                inputs = model.make_inputs(dims={"batch": batch} if batch else None, seed=1)
                assert_outputs_match(model, exe.run(inputs), reference_outputs(model, inputs),
                                     self.rtol, self.atol, f"{graph} on {target.name}")

    @pytest.mark.parametrize("name", BUILTIN_MODELS)
    def test_builtin_model_matches_reference(self, name: str, backend_info: BackendInfo, target: Device) -> None:
        if name not in self.models:
            pytest.skip(f"'{name}' is not in {type(self).__name__}.models")
        model = Model.builtin(name)  # written as ONNX by hwkit: no torch needed
        inputs = model.make_inputs(seed=0)
        with self.compile(model, backend_info, target) as exe:
            assert_outputs_match(model, exe.run(inputs), reference_outputs(model, inputs),
                                 self.rtol, self.atol, f"{name} on {target.name}")

    def test_runs_are_repeatable(self, backend_info: BackendInfo, target: Device) -> None:
        model = Model.load(small_graphs()["matmul_softmax_dynamic"])
        inputs = model.make_inputs(dims={"batch": 4}, seed=2)
        with self.compile(model, backend_info, target) as exe:
            first = exe.run(inputs)
            first = {k: v.copy() for k, v in first.items()}  # a runtime may reuse its buffers
            exe.run(model.make_inputs(dims={"batch": 4}, seed=3))  # other inputs in between
            second = exe.run(inputs)
        for name, value in first.items():
            if self.repeat_exact:
                np.testing.assert_array_equal(second[name], value, err_msg=f"output '{name}' changed between runs")
            else:
                np.testing.assert_allclose(second[name], value, rtol=self.rtol, atol=self.atol)

    def test_synchronize_is_idempotent(self, backend_info: BackendInfo, target: Device) -> None:
        model = Model.load(small_graphs()["add_relu"])
        with self.compile(model, backend_info, target) as exe:
            exe.synchronize()  # nothing submitted yet: must return at once
            inputs = model.make_inputs()
            outputs = exe.execute(model.check_inputs(inputs))
            exe.synchronize()
            exe.synchronize()
            assert_outputs_match(model, outputs, reference_outputs(model, inputs), self.rtol, self.atol,
                                 "execute + synchronize")

    # -- errors -----------------------------------------------------------------------------

    def test_unsupported_op_fails_at_compile(self, backend_info: BackendInfo, target: Device) -> None:
        model = Model.load(unknown_ops_graph())
        with pytest.raises(UnsupportedOpError) as caught:
            exe = self.compile(model, backend_info, target)
            exe.close()  # not reached by a conforming backend
        listed = " ".join(caught.value.ops)
        assert "Frobnicate" in listed and "Twiddle" in listed, (
            f"UnsupportedOpError must list every unsupported op at once, listed only {list(caught.value.ops)}")
        assert caught.value.backend == backend_info.name

    def test_no_silent_fallback(self, backend_info: BackendInfo) -> None:
        """Every device compiles for that device, reports it, and produces correct outputs."""
        model = Model.load(small_graphs()["add_relu"])
        inputs = model.make_inputs()
        expected = reference_outputs(model, inputs)
        for device in backend_info.devices:
            with self.compile(model, backend_info, device) as exe:
                assert isinstance(exe, Executable)
                assert exe.device == device, (
                    f"compiled for {device.name} but the executable runs on {exe.device.name}: a silent fallback")
                assert_outputs_match(model, exe.run(inputs), expected, self.rtol, self.atol, f"on {device.name}")

    def test_options_are_validated(self, backend_info: BackendInfo, target: Device) -> None:
        model = Model.load(small_graphs()["add_relu"])
        with pytest.raises(OptionError):
            self.compile(model, backend_info, target, no_such_option_xyz=1)
        with pytest.raises(OptionError):
            self.compile(model, backend_info, target, threads=0)
        assert backend_info.backend is not None
        options_type = backend_info.backend.Options
        assert issubclass(options_type, hwkit.BackendOptions), "Options must subclass hwkit.BackendOptions"
        options_type.describe()  # every field has a type hint and a default: help texts need both
        with self.compile(model, backend_info, target, threads=1) as exe:  # the option bench sets
            assert exe.options.threads == 1, "the executable must keep the options it was compiled with"
            exe.run(model.make_inputs())

    def test_close_releases(self, backend_info: BackendInfo, target: Device) -> None:
        model = Model.load(small_graphs()["add_relu"])
        exe = self.compile(model, backend_info, target)
        exe.run(model.make_inputs())
        exe.close()
        with pytest.raises(ExecutionError):
            exe.run(model.make_inputs())
        exe.close()  # twice is fine

    @pytest.mark.parametrize("problem", ["wrong_name", "missing", "wrong_dtype", "wrong_shape"])
    def test_run_rejects_bad_inputs(self, problem: str, backend_info: BackendInfo, target: Device) -> None:
        model = Model.load(small_graphs()["add_relu"])
        good = model.make_inputs()["x"]
        bad: dict[str, Any] = {
            "wrong_name": {"x": good, "not_an_input": good},
            "missing": {},
            "wrong_dtype": {"x": good.astype(np.float64)},
            "wrong_shape": {"x": np.ones((3, 4), np.float32)},
        }[problem]
        with self.compile(model, backend_info, target) as exe:
            with pytest.raises(ModelError):
                exe.run(bad)
