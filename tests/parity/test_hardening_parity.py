"""Parity judged robustly: a relative difference that stays meaningful where the reference is 0,
an absolute tolerance that grows with the output's magnitude, a pass that cannot fail said out
loud; bisect says what it could and could not see; the cpu backend's Pow by a constant integer
is exact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from rich.console import Console

import hwkit
from hwkit.cli import main
from hwkit.errors import CompileError
from hwkit.parity.agreement import compare_output, relative_difference
from hwkit.parity.bisect import bisect, expose
from hwkit.parity.check import VacuousPassWarning, check
from hwkit.parity.tolerance import TOLERANCES, tolerance
from hwkit.report import tables

FP32 = tolerance("fp32")


def _text(table: Any) -> str:
    console = Console(width=250, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text()


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], shape: list[int],
           inputs: tuple[str, ...] = ("x",), output: str = "y") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(i, TensorProto.FLOAT, shape) for i in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


# -- 6. the relative difference near zero ------------------------------------------------------


@pytest.mark.parametrize("zeros", [1, 10, 999])
def test_relative_difference_stays_finite_where_the_reference_is_zero(zeros):
    rng = np.random.default_rng(zeros)
    ref = rng.standard_normal(1000).astype(np.float32)
    ref[rng.choice(1000, zeros, replace=False)] = 0.0  # a ReLU's zeros
    got = ref + np.float32(1e-6)
    a = compare_output("y", ref, got, FP32)
    rms = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    assert a.max_rel < 1.0 and np.isfinite(a.max_rel)  # not 1e+302
    # Where |ref| is below the output's scale the difference is measured against that scale.
    assert a.max_rel >= 1e-6 / rms * 0.99


def test_relative_difference_is_the_usual_one_above_the_scale_and_scale_free():
    ref = np.array([1000.0, 1.0, 0.0, -2000.0])
    diff = np.array([1.0, 0.0, 0.0, 0.0])
    assert relative_difference(diff, ref, 1118.0) == pytest.approx(1.0 / 1118.0)  # 1000 < rms: vs rms
    assert relative_difference(np.array([0, 0, 0, 4.0]), ref, 1118.0) == pytest.approx(4.0 / 2000.0)
    for k in (1e-6, 1.0, 1e6):  # the same figure at any magnitude
        a = compare_output("y", ref * k, (ref + diff) * k)
        assert a.max_rel == pytest.approx(compare_output("y", ref, ref + diff).max_rel)
    # Only an all-zero reference has no scale: inf for a difference, 0 for none.
    assert compare_output("y", np.zeros(3), np.array([0.0, 1e-9, 0.0])).max_rel == float("inf")
    assert compare_output("y", np.zeros(3), np.zeros(3)).max_rel == 0.0


# -- 6. the absolute tolerance grows with the output's magnitude -------------------------------


def test_effective_atol_is_atol_times_the_rms_above_one():
    assert FP32.effective_atol(None) == FP32.effective_atol(0.5) == FP32.effective_atol(float("nan")) == 1e-4
    assert FP32.effective_atol(45.6) == pytest.approx(45.6e-4)
    for profile in TOLERANCES.values():
        assert profile.effective_atol(10.0) == pytest.approx(10 * profile.atol)


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e3, 1e4, 1e5])
def test_float32_rounding_that_grows_with_magnitude_passes_at_any_magnitude(scale):
    # An output of magnitude ~scale whose small elements come out of large terms (as a ReLU's
    # near-zeros come out of large pre-activations): (x + scale) - scale in float32 against x.
    # Each element is off by up to half an ulp of the terms, whatever its own size.
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20_000) * scale
    x[::10] = rng.uniform(-1.0, 1.0, 2000)  # small elements
    ref = x.astype(np.float32)
    shift = np.float32(scale)
    got = (ref + shift) - shift
    agreement = compare_output("y", ref, got, FP32)
    assert agreement.passed and agreement.tol_ratio < 0.05
    plain = int(np.count_nonzero(np.abs(got.astype(np.float64) - ref) > 1e-4 + 1e-3 * np.abs(ref.astype(np.float64))))
    assert (plain > 0) == (scale >= 1e4)  # the fixed atol alone fails large outputs on their small elements


def test_a_real_error_still_fails_at_large_magnitude():
    ref = np.random.default_rng(1).standard_normal(10_000) * 50
    got = ref.copy()
    got[7] += 0.5  # 1% of the scale: a wrong element, not rounding
    a = compare_output("y", ref, got, FP32)
    assert not a.passed and a.violations == 1 and a.tol_ratio > 1


def test_integer_outputs_keep_the_plain_atol():
    ref = np.arange(0, 50_000, 7, dtype=np.int64)
    assert compare_output("ids", ref, ref, FP32).atol_effective == FP32.atol


def test_the_failure_line_names_the_grown_atol(registry, chain):
    big = {"x": np.full((3, 4), 400.0, np.float32)}  # y's rms far above 1
    report = check(chain, ["fake", "perturb"], reference="fake", inputs=big,
                   options={"perturb": {"node": "n9", "delta": 5.0}})
    (line,) = report.failures()
    assert "beyond atol" in line and "× rms(ref)" in line


# -- 10d. a pass that cannot fail ----------------------------------------------------------------


@pytest.mark.parametrize("peak", [1e-5, 8e-10, 9e-5])
def test_a_reference_within_atol_of_zero_is_a_vacuous_pass(peak):
    ref = np.random.default_rng(2).uniform(-peak, peak, (4, 100))
    zero = compare_output("logits", ref, np.zeros_like(ref), FP32)
    assert zero.passed and zero.vacuous  # any output near 0 passes: it says so
    right = compare_output("logits", ref, ref, FP32)
    assert right.vacuous and right.passed
    assert not compare_output("logits", ref * 1e4 / peak, ref * 1e4 / peak, FP32).vacuous
    assert not compare_output("mask", np.zeros(5), np.zeros(5), FP32).vacuous  # an exact 0 is no signal


def test_a_vacuous_pass_is_visible_in_the_table_the_json_and_a_warning(fake_registry, tmp_path, capsys):
    tiny = _model([helper.make_node("Mul", ["x", "k"], ["y"])], [numpy_helper.from_array(np.float32(1e-7), "k")],
                  [2, 8])
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny, path)
    with pytest.warns(VacuousPassWarning, match=r"fake: output 'y' passes vacuously: .*max \|ref\| .*--atol \de-1\d"):
        report = check(str(path), ["fake", "timed"], reference="timed", options={"fake": {"scale": 0.0}})
    (output,) = report.results[0].agreement
    assert report.passed and output.vacuous and output.ref_max < 1e-6
    assert report.to_dict()["results"][0]["outputs"][0]["vacuous"] is True
    text = _text(report.table())
    assert "pass, vacuous" in text and "an all-zero output would pass too" in text
    # The CLI: exit 0 (it did pass), the warning on stderr, one line.
    assert main(["check", str(path), "-b", "fake,timed", "--reference", "timed", "-o", "fake.scale=0"]) == 0
    err = capsys.readouterr().err
    assert "hwkit: warning: fake: output 'y' passes vacuously" in err and err.count("\n") == 1
    # Following the line's advice makes the all-zero output fail.
    assert main(["check", str(path), "-b", "fake,timed", "--reference", "timed", "-o", "fake.scale=0",
                 "--atol", "1e-11"]) == 1


def test_row_36_vacuous_pass_warns(fake_registry, tmp_path, capsys):
    tiny = _model([helper.make_node("Mul", ["x", "k"], ["y"])], [numpy_helper.from_array(np.float32(1e-9), "k")],
                  [4, 10])
    path = tmp_path / "logits.onnx"
    onnx.save(tiny, path)
    assert main(["check", str(path), "-b", "fake,timed", "--reference", "timed"]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwkit: warning: fake: output 'y' passes vacuously: every reference element is within "
                          "the tolerance of 0") and "to test it, lower atol, e.g. --atol" in err


# -- 9. bisect says what it could and could not see -----------------------------------------------


def test_row_38_a_constant_input_is_not_observable(registry, chain):
    report = bisect(chain, "fake", "perturb", options={"perturb": {"node": "n1"}})
    kinds = {i.name: (i.kind, i.max_abs, i.passed) for i in report.node_inputs}
    assert kinds["c"] == ("constant", None, None) and kinds["t0"][0] == "compared"
    data = report.to_dict()
    assert {"name": "c", "kind": "constant", "max_abs": None, "passed": None} in data["node"]["inputs"]
    text = _text(report.table())
    assert "not observable" in text and "bisect sees the graph's copy only" in text
    row = next(line for line in text.splitlines() if " c " in line)
    assert "agrees" not in row and "0 " not in row.split("constant", 1)[1]


def _dead_end_model() -> onnx.ModelProto:
    """x -> n0: Add(x, c) -> t0 -> n1: Mul(t0, 0) -> y: whatever n0 does, y is 0."""
    return _model([helper.make_node("Add", ["x", "c"], ["t0"], name="n0"),
                   helper.make_node("Mul", ["t0", "z"], ["y"], name="n1")],
                  [numpy_helper.from_array(np.ones(4, np.float32), "c"),
                   numpy_helper.from_array(np.zeros(4, np.float32), "z")], [3, 4])


@pytest.mark.parametrize("max_probes", [200, 1])
def test_row_37_an_intermediate_divergence_the_outputs_do_not_show(registry, tmp_path, capsys, max_probes):
    model = hwkit.Model.load(_dead_end_model())
    report = bisect(model, "fake", "perturb", options={"perturb": {"node": "n0"}}, max_probes=max_probes)
    assert report.node == "n0" and report.outputs_agree is True
    assert [a.name for a in report.graph_outputs or []] == ["y"]
    data = json.loads(report.to_json())
    assert data["outputs_agree"] is True and data["graph_outputs"][0]["passed"] is True
    assert "graph output" in _text(report.table()) and "does not reach it" in _text(report.table())
    path = tmp_path / "dead.onnx"
    onnx.save(_dead_end_model(), path)
    # check passes; check --bisect exits 1 (a tensor does differ) and says the outputs agree.
    assert main(["check", str(path), "-b", "fake,perturb", "--reference", "fake", "-o", "perturb.node=n0"]) == 0
    capsys.readouterr()
    assert main(["check", str(path), "--bisect", "-b", "fake,perturb", "-o", "perturb.node=n0"]) == 1
    err = capsys.readouterr().err
    assert "first differ at node 'n0' (Add); the graph's outputs still agree within tolerance" in err
    assert err.count("\n") == 1


def test_when_the_outputs_differ_too_the_line_says_so(registry, chain, capsys, tmp_path):
    path = tmp_path / "chain.onnx"
    onnx.save(chain.proto, path)
    assert main(["check", str(path), "--bisect", "-b", "fake,perturb", "-o", "perturb.node=n3"]) == 1
    assert "first differ at node 'n3' (Sigmoid); the graph's outputs differ too" in capsys.readouterr().err


def _trace(*entries: tuple[str, float, float]) -> dict[str, Any]:
    return {"schema": "hwkit.bisect/1", "model": {"name": "m", "sha256": "0"}, "backends": ["a", "b"],
            "inputs": "seed 0", "tolerance": {"profile": "fp32", "atol": 1e-4, "rtol": 1e-3}, "found": False,
            "node": None, "rounds": 1, "skipped": [], "graph_outputs": None, "outputs_agree": None,
            "trace": [{"tensor": t, "node": f"n_{t}", "op_type": "Relu", "index": i, "max_abs": m, "max_rel": 0.0,
                       "tol_ratio": r, "passed": True} for i, (t, m, r) in enumerate(entries)]}


def test_the_closest_tensor_is_ranked_by_its_tolerance_not_its_size():
    # big: 2e-2 off on values ~1e3 (2% of its tolerance); small: 9e-5 off near 0 (90% of it).
    text = _text(tables.bisect_table(_trace(("big", 2e-2, 0.02), ("small", 9e-5, 0.9), ("same", 0.0, 0.0))))
    closest = next(line for line in text.splitlines() if "closest" in line)
    assert "small" in closest and "90% of it" in closest
    # Older files without tol_ratio fall back to max abs; bit-identical tensors show nothing.
    old = _trace(("big", 2e-2, 0.0), ("small", 9e-5, 0.0))
    for t in old["trace"]:
        del t["tol_ratio"]
    assert "big" in next(line for line in _text(tables.bisect_table(old)).splitlines() if "closest" in line)
    assert "closest" not in _text(tables.bisect_table(_trace(("a", 0.0, 0.0), ("b", 0.0, 0.0))))


def test_identical_backends_print_no_closest_row(registry, chain):
    report = bisect(chain, "fake", "perturb")
    assert not report.found and "closest" not in _text(report.table())
    assert all(t["tol_ratio"] == 0.0 for t in report.to_dict()["trace"])


def test_the_exposed_copy_keeps_the_users_model_name(registry, chain, monkeypatch):
    chain.name = "encoder"
    assert expose(chain, ["t0", "t1"]).name == "encoder"
    # A backend that cannot compile the exposed graphs quotes the model: the user's name only.
    names: list[str] = []
    original = hwkit.Model.__init__

    def spy(self: hwkit.Model, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        names.append(self.name)

    monkeypatch.setattr(hwkit.Model, "__init__", spy)
    with pytest.raises(CompileError) as caught:
        bisect(chain, "fake", "perturb", options={"perturb": {"node": "nope"}})
    assert "probes" not in str(caught.value)
    assert names and all(n == "encoder" for n in names)


# -- 9. the cpu backend's Pow by a constant integer is exact ----------------------------------------


def _pow_model(exponent: np.ndarray, shape: list[int]) -> onnx.ModelProto:
    return _model([helper.make_node("Pow", ["x", "e"], ["y"])], [numpy_helper.from_array(exponent, "e")], shape)


POW_CASES = [
    (np.array(2.0, np.float32), "2.0 scalar"),
    (np.array([3.0], np.float32), "3.0 of shape [1]"),
    (np.array([[2.0]], np.float32), "2.0 of shape [1, 1]"),
    (np.array(2, np.int64), "int64 2"),
    (np.array(3, np.int32), "int32 3"),
    (np.array(1.0, np.float32), "1.0"),
    (np.array(0.0, np.float32), "0.0"),
    (np.array(2.0, np.float64), "float64 2.0"),
]


@pytest.mark.parametrize("exponent, label", POW_CASES, ids=[c[1] for c in POW_CASES])
def test_cpu_pow_by_a_constant_integer_matches_onnxruntime_bit_for_bit(exponent, label):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((16, 512)) * rng.choice([1e-20, 1e-3, 1.0, 1e3, 1e12], (16, 512))).astype(np.float32)
    x[0, :8] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 3e-39, -1.0, 1e30]
    model = _pow_model(exponent, [16, 512])
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with hwkit.compile(model, "cpu") as exe:
        got = exe.run({"x": x})["y"]
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))  # bit for bit, NaNs included


def test_cpu_pow_by_other_exponents_keeps_the_general_path():
    pytest.importorskip("torch")
    x = np.abs(np.random.default_rng(4).standard_normal((2, 3)).astype(np.float32)) + 0.5
    for exponent, shape in ((np.array(0.5, np.float32), (2, 3)), (np.array(-1.0, np.float32), (2, 3)),
                            (np.array([[[2.0]]], np.float32), (1, 2, 3)),  # broadcasting adds an axis
                            (np.array([2.0, 3.0, 2.0], np.float32), (2, 3))):
        with hwkit.compile(_pow_model(exponent, [2, 3]), "cpu") as exe:
            got = exe.run({"x": x})["y"]
        assert got.shape == shape
        np.testing.assert_allclose(got, np.power(x, exponent), rtol=1e-6)


def test_docs_state_the_decision():
    text = (Path(__file__).resolve().parents[2] / "docs" / "parity.md").read_text()
    for needed in ("max(1, rms(ref))", "max(|ref|, rms(ref))", "vacuous", "benchmarks/tolerance_scale.py",
                   "not observable", "Exit codes"):
        assert needed in text


def test_row_39_large_outputs_with_zeros_pass_and_show_a_finite_relative_difference(tmp_path, capsys):
    """A ReLU output of large magnitude (half zeros) from two real runtimes: the relative
    difference stays finite where the reference is 0, and float32 rounding passes fp32."""
    from hwkit.testing import require_backend

    require_backend("onnxruntime")
    require_backend("openvino")
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((256, 256)) * 30).astype(np.float32)  # outputs of magnitude ~500
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 256])],
        [onnx.numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "big.onnx"
    onnx.save(model, path)
    report = tmp_path / "r.json"
    code = main(["check", str(path), "-b", "onnxruntime,openvino", "--json", str(report)])
    out = capsys.readouterr().out
    data = json.loads(report.read_text())
    (agreement,) = data["results"][0]["outputs"]
    assert code == 0 and agreement["passed"] and isinstance(agreement["max_rel"], float) and agreement["max_rel"] < 1e-3
    assert "e+30" not in out and agreement["atol_effective"] > 1e-4  # the atol grew with the output's scale
