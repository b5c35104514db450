"""hwkit.testing: the conformance kit passes for the shipped backends, catches broken ones, and
the ONNX-backend adapter and scripts/conformance.py work."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest

import hwkit
from hwkit.testing import small_graphs
from hwkit.testing.onnx_backend import make_onnx_backend

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent


# -- the kit catches broken backends -------------------------------------------------------

BROKEN = '''
import dataclasses
import numpy as np
from onnx.reference import ReferenceEvaluator
import hwkit
from hwkit import Backend, BackendOptions, Device, Executable


class Exe(Executable):
    scale = 1.0
    def __init__(self, model, device, options, lazy=False):
        super().__init__(model, device, options)
        self.evaluator = None if lazy else ReferenceEvaluator(model.proto)
    def execute(self, inputs):
        evaluator = self.evaluator or ReferenceEvaluator(self.model.proto)
        values = evaluator.run(None, dict(inputs))
        return {s.name: np.asarray(v * self.scale if v.dtype.kind == "f" else v)
                for s, v in zip(self.model.outputs, values)}


class Good(Backend):
    name = "good"
    def devices(self):
        return [Device("cpu", "cpu", "reference")]
    def compile(self, model, device, options):
        from hwkit.errors import UnsupportedOpError
        foreign = sorted({f"{n.domain}.{n.op_type}" for n in model.proto.graph.node if n.domain})
        if foreign:
            raise UnsupportedOpError(self.name, model.nodes_by_op(foreign))
        return Exe(model, device, options)


class WrongOutputs(Good):
    name = "wrong_outputs"
    def compile(self, model, device, options):
        exe = super().compile(model, device, options)
        exe.scale = 1.01
        return exe


class SilentFallback(Good):
    name = "silent_fallback"
    def devices(self):
        return [Device("cpu", "cpu", "reference"), Device("npu0", "npu", "an accelerator")]
    def compile(self, model, device, options):
        return super().compile(model, Device("cpu", "cpu", "reference"), options)  # ignores device


class LateFailure(Good):
    name = "late_failure"  # compiles anything, fails only when run
    def compile(self, model, device, options):
        return Exe(model, device, options, lazy=True)


class CloseKeepsRunning(Good):
    name = "close_keeps_running"
    def compile(self, model, device, options):
        exe = super().compile(model, device, options)
        exe.close = lambda: None  # forgets to release (and to call super().close())
        return exe


@hwkit.hookimpl
def hwkit_register_backends():
    return [Good, WrongOutputs, SilentFallback, LateFailure, CloseKeepsRunning]
'''

KIT_TESTS = '''
from hwkit.testing import BackendConformance

class TestGood(BackendConformance):
    backend = "good"
    models = ()
class TestWrongOutputs(TestGood):
    backend = "wrong_outputs"
class TestSilentFallback(TestGood):
    backend = "silent_fallback"
class TestLateFailure(TestGood):
    backend = "late_failure"
class TestCloseKeepsRunning(TestGood):
    backend = "close_keeps_running"
class TestNotInstalled(TestGood):
    backend = "not_installed_anywhere"
'''


def test_kit_catches_broken_backends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(broken=BROKEN, test_kit=KIT_TESTS)
    pytester.makeconftest("import broken\nfrom hwkit.plugins import registry\nregistry().register(broken, 'broken')\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-rfE", "-k",
                                           "not builtin_model", "test_kit.py")
    failed = {line.split(" ")[1].split("::", 1)[1] for line in result.outlines if line.startswith(("FAILED ", "ERROR "))}
    by_class: dict[str, set[str]] = {}
    for test in failed:
        cls, _, name = test.partition("::")
        by_class.setdefault(cls, set()).add(name.split("[")[0].split(" ")[0])
    assert "TestGood" not in by_class, result.stdout.str()
    assert "test_small_graph_matches_reference" in by_class["TestWrongOutputs"]
    assert by_class["TestSilentFallback"] == {"test_no_silent_fallback"}
    assert by_class["TestLateFailure"] == {"test_unsupported_op_fails_at_compile"}
    assert by_class["TestCloseKeepsRunning"] == {"test_close_releases"}
    assert by_class["TestNotInstalled"]  # a backend that is not installed fails: the kit cannot test it
    result.stdout.fnmatch_lines(["*not_installed_anywhere*install the plugin first*"])


def test_suite_module_runs_for_the_backend_named_on_the_command_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "--pyargs", "hwkit.testing.suite",
                                          "--hwkit-backend", "onnxruntime", "-k", "devices or options")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "--pyargs", "hwkit.testing.suite", "-k", "devices")
    result.assert_outcomes(skipped=1)  # no backend named: skipped with the reason, not failed


# -- the ONNX backend adapter ----------------------------------------------------------------

def test_adapter_runs_a_model_in_output_order() -> None:
    backend = make_onnx_backend("onnxruntime")
    assert backend.supports_device("CPU")
    assert not backend.supports_device("CUDA") or any(
        d.kind == "gpu" for d in hwkit.api.registry().get("onnxruntime").devices)
    proto = small_graphs()["gather_two_outputs"]
    ids = np.array([0, 2, 2], np.int64)
    total, shape = backend.run_model(proto, [ids])
    table = onnx.numpy_helper.to_array(proto.graph.initializer[0])
    np.testing.assert_allclose(total, table[[0, 2, 2]].sum(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(shape, [3])


def _relu_case() -> SimpleNamespace:
    """One node case shaped like ONNX's (model, data_sets, rtol, atol), without loading all 1884."""
    x = np.array([[-1.0, 0.5], [2.0, -3.0]], np.float32)
    node = onnx.helper.make_node("Relu", ["x"], ["y"])
    graph = onnx.helper.make_graph([node], "test_relu", [onnx.helper.make_tensor_value_info("x", 1, [2, 2])],
                                   [onnx.helper.make_tensor_value_info("y", 1, [2, 2])])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    return SimpleNamespace(name="test_relu", model=model, data_sets=[([x], [np.maximum(x, 0)])], rtol=1e-3, atol=1e-7)


def test_adapter_runs_node_and_model_like_onnx_runner() -> None:
    from onnx.backend.test.runner import Runner

    case = _relu_case()
    backend = make_onnx_backend("openvino")
    rep = backend.prepare(case.model, "CPU")
    for inputs, expected in case.data_sets:
        Runner.assert_similar_outputs(expected, rep.run(inputs), rtol=case.rtol, atol=case.atol)
    outputs = backend.run_node(case.model.graph.node[0], case.data_sets[0][0],
                               outputs_info=[(np.float32, (2, 2))], opset_version=17)
    np.testing.assert_array_equal(outputs[0], case.data_sets[0][1][0])


# -- scripts/conformance.py -------------------------------------------------------------------

def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("conformance_script", ROOT / "scripts" / "conformance.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_write_docs_replaces_only_the_marked_block(tmp_path: Path) -> None:
    script = _script()
    doc = tmp_path / "conformance.md"
    script.write_docs("first table", doc)
    assert script.BEGIN in doc.read_text() and "first table" in doc.read_text()
    doc.write_text(textwrap.dedent(f"""\
        # Conformance
        Written by someone else.
        {script.BEGIN}
        old table
        {script.END}
        ## Another section
        """))
    script.write_docs("| new | table |", doc)
    text = doc.read_text()
    assert "old table" not in text and "| new | table |" in text
    assert text.startswith("# Conformance\nWritten by someone else.\n") and text.endswith("## Another section\n")


def test_script_runs_cases_and_compares_with_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    script = _script()
    case = _relu_case()
    sequence = SimpleNamespace(name="test_seq", model=onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("SequenceEmpty", [], ["s"])], "seq", [],
        [onnx.helper.make_value_info("s", onnx.helper.make_sequence_type_proto(
            onnx.helper.make_tensor_type_proto(1, None)))])), data_sets=[], rtol=1e-3, atol=1e-7)
    mapping = SimpleNamespace(name="test_map", model=onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["m"], ["n"])], "map",
        [onnx.helper.make_value_info("m", onnx.helper.make_map_type_proto(7, onnx.helper.make_tensor_type_proto(1, None)))],
        [onnx.helper.make_value_info("n", onnx.helper.make_map_type_proto(7, onnx.helper.make_tensor_type_proto(1, None)))])),
        data_sets=[], rtol=1e-3, atol=1e-7)
    cases = {"test_relu": case, "test_seq": sequence, "test_map": mapping}
    monkeypatch.setattr(script, "load_cases", lambda: cases)  # not the shared cache: other tests use it
    assert script.run_case("hwkit:onnxruntime", "test_relu") == ("pass", "")
    assert script.run_case("hwkit:onnxruntime", "test_seq")[0] == "pass"  # sequences run through hwkit
    assert script.run_case("hwkit:onnxruntime", "test_map")[0] == "n/a"  # maps do not


RUN_ALL = """
import importlib.util, json, sys
import numpy as np, onnx
spec = importlib.util.spec_from_file_location("conformance_script", sys.argv[1])
script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script)
x = np.array([[-1.0, 0.5], [2.0, -3.0]], np.float32)
graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
    [onnx.helper.make_tensor_value_info("x", 1, [2, 2])], [onnx.helper.make_tensor_value_info("y", 1, [2, 2])])
model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
class Case:
    name, model, data_sets, rtol, atol = "test_relu", model, [([x], [np.maximum(x, 0)])], 1e-3, 1e-7
class Slow(Case):
    model = property(lambda self: __import__("time").sleep(30))  # hangs before any runtime runs
script._CASES.update({"test_relu": Case(), "test_slow": Slow()})
tasks = [(t, "test_relu") for t in ("hwkit:openvino", "raw:openvino", "raw:onnxruntime")]
results = script.run_all(tasks, jobs=2, timeout=120, threads=1, progress=False)
results.update(script.run_all([("hwkit:onnxruntime", "test_slow")], jobs=1, timeout=2, threads=1, progress=False))
print(json.dumps({"results": results, "lost": script.lost_cases(results, "openvino")}))
"""


def test_script_schedules_workers_with_a_timeout() -> None:
    """run_all forks workers from a process that loaded no runtime, as the script's main does."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", RUN_ALL, str(ROOT / "scripts" / "conformance.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["results"]["hwkit:openvino"]["test_relu"] == ["pass", ""]
    assert out["results"]["raw:onnxruntime"]["test_relu"] == ["pass", ""]
    assert out["results"]["hwkit:onnxruntime"]["test_slow"][0] == "timeout"
    assert out["lost"] == {}


# -- element types numpy lacks (found by scripts/conformance.py; fixed in both plugins) --------

@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("elem", [onnx.TensorProto.BFLOAT16, onnx.TensorProto.INT4, onnx.TensorProto.UINT4,
                                  onnx.TensorProto.FLOAT8E4M3FN])
def test_ml_dtypes_cross_the_plugin_boundary(backend: str, elem: int) -> None:
    """An input and an output of a type numpy lacks (bfloat16, 4-bit, float8) keep their bits."""
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=elem), helper.make_node("Cast", ["z"], ["w"], to=onnx.TensorProto.FLOAT)],
        "cast", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [5]), helper.make_tensor_value_info("z", elem, [5])],
        [helper.make_tensor_value_info("y", elem, [5]), helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [5])])
    model = hwkit.Model.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    x = np.array([-3.0, -1.0, 0.0, 2.0, 5.0], np.float32)
    inputs = {"x": x, "z": x.astype(model.inputs[1].dtype)}
    with hwkit.compile(model, backend) as exe:
        got = exe.run(inputs)
    assert got["y"].dtype.name == model.outputs[0].dtype and got["y"].shape == (5,)
    np.testing.assert_array_equal(got["y"].astype(np.float32), x.astype(model.outputs[0].dtype).astype(np.float32))
    np.testing.assert_array_equal(got["w"], inputs["z"].astype(np.float32))
