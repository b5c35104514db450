"""hwkit.bisect and ``hwkit check --bisect``: the first diverging node is found, and shown to
start there (its inputs agree, its output does not)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

import hwkit
from hwkit.parity.bisect import bisect, expose, list_probes
from hwkit.errors import CompileError, OptionError
from tests import perturb_backend
from tests.helpers import make_plugin_dist, run_cli, unknown_ops_model
from tests.perturb_backend import chain_model



def _options(**perturb: object) -> dict[str, dict[str, object]]:
    return {"perturb": perturb}


@pytest.mark.parametrize("node", ["n0", "n4", "n9"])
def test_the_perturbed_node_is_located(registry, chain, node):
    report = bisect(chain, "fake", "perturb", options=_options(node=node))
    assert report.found and report.node == node and report.node_index == int(node[1:])
    assert report.rounds == 1  # ten tensors: all exposed at once
    (output,) = report.outputs
    assert not output.passed and output.max_abs > 0.1
    # It starts here: every input of the node agrees exactly; a constant is not observable.
    assert report.node_inputs and all(i.passed and i.max_abs == 0.0 for i in report.node_inputs if i.kind != "constant")
    assert all((i.passed, i.max_abs) == (None, None) for i in report.node_inputs if i.kind == "constant")
    kinds = {i.name: i.kind for i in report.node_inputs}
    assert kinds.get("c", "constant") == "constant"
    assert kinds.get("x" if node == "n0" else f"t{int(node[1:]) - 1}") in ("graph input", "compared")
    # Every tensor before the node agrees; the node's own output is the first that does not.
    first_bad = next(p.tensor for p, a in report.trace if not a.passed)
    assert first_bad == output.name and len(report.trace) == 10


def test_identical_backends_have_no_divergence(registry, chain):
    report = bisect(chain, "fake", "perturb")
    assert not report.found and len(report.trace) == 10 and report.node_inputs == []
    assert all(a.max_abs == 0.0 for _, a in report.trace)


def test_nan_is_located(registry, chain):
    report = bisect(chain, "fake", "perturb", options=_options(node="n6", delta=float("nan")))
    assert report.node == "n6" and report.outputs[0].nan == 12


def test_too_many_probes_are_split_in_halves(registry, chain):
    # 10 tensors, at most 3 a round: [n0 n1] [n2 n3 n4] [n5 n6] [n7 n8 n9].
    report = bisect(chain, "fake", "perturb", options=_options(node="n7"), max_probes=3)
    assert report.node == "n7" and report.rounds == 4 and len(report.trace) == 10
    # The halves are searched in order, and the search stops at the first divergence.
    early = bisect(chain, "fake", "perturb", options=_options(node="n1"), max_probes=3)
    assert early.node == "n1" and [p.tensor for p, _ in early.trace] == ["t0", "t1"]
    assert early.rounds == 2  # one to find n1; one for the graph output y, not compared by then


def test_a_backend_that_cannot_compile_all_probes_is_split(registry, chain):
    report = bisect(chain, "fake", "perturb", options=_options(node="n5", max_outputs=2))
    assert report.node == "n5" and report.rounds > 1 and report.skipped == []


def test_a_tensor_a_backend_cannot_expose_is_skipped(registry, chain):
    report = bisect(chain, "fake", "perturb", options=_options(node="n5", refuse="t4"))
    assert report.node == "n5" and report.skipped == ["t4"]
    assert [(i.name, i.kind, i.passed) for i in report.node_inputs] == [
        ("t4", "not compared", None), ("c", "constant", None)]


def test_a_graph_a_backend_cannot_compile_at_all_is_an_error(registry, chain):
    # Not a reason to split down to single tensors: the plain graph is tried once, and its error raised.
    with pytest.raises(CompileError, match="no node named 'nope'"):
        bisect(chain, "fake", "perturb", options=_options(node="nope"))


def test_real_runtimes_on_a_builtin_model(registry):
    # onnxruntime against the reference evaluator with the ReLU of the built-in MLP perturbed.
    report = bisect("mlp", "onnxruntime", "perturb", options=_options(node="relu0"))
    assert report.node == "relu0" and report.op_type == "Relu"
    (given,) = report.node_inputs
    assert given.kind == "compared" and given.passed and given.max_abs < 1e-4
    assert report.outputs[0].max_abs == pytest.approx(1.0, abs=1e-4)


def test_probes_come_in_topological_order_with_types():
    model = hwkit.Model.load(chain_model())
    probes, skipped = list_probes(model)
    assert [p.node for p in probes] == [f"n{i}" for i in range(10)] and skipped == []
    exposed = expose(model, [p.tensor for p in probes])
    assert [o.name for o in exposed.outputs] == ["y", *(f"t{i}" for i in range(9))]
    assert all(o.dtype == "float32" and o.shape == (3, 4) for o in exposed.outputs)
    onnx.checker.check_model(exposed.proto)
    assert len(model.proto.graph.output) == 1  # the original is untouched


def test_tensors_of_unknown_type_are_skipped():
    probes, skipped = list_probes(hwkit.Model(unknown_ops_model()))
    assert [p.tensor for p in probes] == ["y"] and skipped == ["t"]  # y typed by the graph, t by nothing


def test_the_same_backend_twice_is_refused(registry, chain):
    with pytest.raises(OptionError, match="two different backends"):
        bisect(chain, "fake", "fake")


def test_report_json(registry, chain):
    data = json.loads(bisect(chain, "fake", "perturb", options=_options(node="n2")).to_json())
    assert data["schema"] == "hwkit.bisect/1" and data["found"] is True
    assert data["node"]["name"] == "n2" and data["node"]["op_type"] == "Tanh"
    assert [t["passed"] for t in data["trace"]][:3] == [True, True, False]


def test_cli_bisect(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "hwkit-perturb", "perturb", "hwkit_perturb_test",
                     Path(perturb_backend.__file__).read_text())
    model = tmp_path / "chain.onnx"
    onnx.save(chain_model(), model)
    found = run_cli("check", str(model), "--bisect", "-b", "onnxruntime,perturb", "-o", "perturb.node=n6",
                    "--json", str(tmp_path / "b.json"), site=site)
    assert found.returncode == 1, found.stderr
    assert "n6" in found.stdout and "Tanh" in found.stdout and "DIVERGES" in found.stdout
    assert "onnxruntime and perturb first differ at node 'n6' (Tanh)" in found.stderr
    assert json.loads((tmp_path / "b.json").read_text())["node"]["name"] == "n6"
    clean = run_cli("check", str(model), "--bisect", "-b", "perturb", site=site)  # vs the reference
    assert clean.returncode == 0, clean.stderr
    assert "onnxruntime vs perturb" in clean.stdout and "no tensor differs beyond tolerance" in clean.stdout


def test_row_118_one_precision_at_a_time(registry, chain):
    with pytest.raises(OptionError, match=r"one precision at a time, got --precision fp32,bf16; .* --precision bf16"):
        bisect(chain, "fake", "perturb", precision="fp32,bf16")


def test_row_118_a_precision_the_second_backend_does_not_run_is_refused_with_its_reason(registry):
    # onnxruntime's CPU provider declares bf16 unsupported (hwkit_onnxruntime/precision.py).
    with pytest.raises(OptionError, match=r"onnxruntime does not run bf16 \(.+\); bisect a precision it runs"):
        bisect("mlp", "openvino", "onnxruntime", precision="bf16")


def _worst(report):
    return max(a.max_abs for _, a in report.trace)


def test_int8_bisects_the_quantised_graph_against_fp32(registry):
    """A (the reference side) runs the fp32 graph, B hwkit's QDQ graph: the tensors both have."""
    fp32 = bisect("mlp", "onnxruntime", "openvino")
    int8 = bisect("mlp", "onnxruntime", "openvino", precision="int8")
    assert int8.precision == "int8" and int8.tolerance.profile == "int8" and int8.to_dict()["precision"] == "int8"
    assert {p.op_type for p, _ in int8.trace} == {p.op_type for p, _ in fp32.trace}  # the original graph's tensors
    # int8 rounds every activation to 256 levels: far from fp32's agreement, so B really ran the QDQ graph.
    assert _worst(int8) > 100 * max(_worst(fp32), 1e-7), (_worst(int8), _worst(fp32))


def test_bf16_reaches_the_second_backend_only(registry):
    import hwkit.runner.sweep as sweep

    (row,) = sweep.rows(["openvino"], ["bf16"])
    if not row.support.supported:
        pytest.skip(f"openvino does not run bf16 here: {row.support.unsupported}")
    fp32 = bisect("mlp", "onnxruntime", "openvino")
    bf16 = bisect("mlp", "onnxruntime", "openvino", precision="bf16")  # onnxruntime (A) has no bf16: it runs fp32
    # bf16 keeps 8 bits of mantissa: B's tensors differ far more than at fp32, so it really ran bf16.
    assert _worst(bf16) > 20 * max(_worst(fp32), 1e-7), (_worst(bf16), _worst(fp32))
    assert bf16.tolerance.profile == "bf16" and not bf16.found  # within bf16's profile
