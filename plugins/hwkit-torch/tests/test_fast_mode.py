"""compile=fast: Inductor with freezing, compiled within compile() (so a bench row's compile_s
holds the compilation), and within the fp32 profile of onnxruntime's outputs."""

from __future__ import annotations

import pytest

import hwkit
from hwkit.errors import OptionError
from hwkit.parity.agreement import compare_output
from hwkit.parity.tolerance import tolerance
from hwkit.testing import require_backend

torch = pytest.importorskip("torch")


def _compiled_frames() -> int:
    from torch._dynamo.utils import counters

    return sum(counters["stats"].values())


def _weight_packs() -> int:
    """Weights Inductor prepacked for oneDNN: it does so only for frozen (constant) weights."""
    from torch._dynamo.utils import counters

    return sum(v for k, v in counters["inductor"].items() if "weight_pack_matcher_count" in k)


def _conv_relu():
    from onnx import TensorProto, helper

    import onnx_graphs as graphs  # this folder's helpers: pytest puts the folder on sys.path

    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    return graphs.model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
                        [graphs.init("w", graphs.rand(8, 3, 3, 3)), graphs.init("b", graphs.rand(8))])


@pytest.mark.slow
def test_fast_mode_compiles_at_compile_time_and_agrees():
    require_backend("cpu")
    require_backend("onnxruntime")
    model = hwkit.Model.load(_conv_relu())
    inputs = model.make_inputs(seed=4)  # the default sizes: the ones the warm-up compiled for
    packed = _weight_packs()
    with hwkit.compile(model, "onnxruntime") as ref, hwkit.compile(model, "cpu", compile="fast", threads=1) as exe:
        assert _weight_packs() > packed, "the weights were not frozen and prepacked"
        before = _compiled_frames()
        got = exe.run(inputs)
        assert _compiled_frames() == before, "the first run compiled: compile() did not warm up"
        expected = ref.run(inputs)
    for name in expected:
        assert compare_output(name, expected[name], got[name], tolerance("fp32")).passed


def test_unknown_compile_mode_lists_the_choices():
    require_backend("cpu")
    with pytest.raises(OptionError, match="fast"):
        hwkit.compile(hwkit.Model.builtin("mlp"), "cpu", compile="fastest")


def test_fp32_linear_layers_run_on_onednn_and_agree():
    require_backend("cpu")
    require_backend("onnxruntime")
    from hwkit_torch import onednn

    if not onednn.available():
        pytest.skip("torch was built without oneDNN (mkldnn)")
    model = hwkit.Model.builtin("mlp")
    inputs = model.make_inputs(dims={"batch": 3}, seed=6)
    with hwkit.compile(model, "onnxruntime") as ref, hwkit.compile(model, "cpu", threads=1) as exe:
        targets = [n.target for n in exe.module.graph.nodes if n.op == "call_function"]
        assert torch.ops.mkldnn._linear_pointwise.default in targets
        assert any(b.is_mkldnn for b in exe.module.buffers()), "the weights were not prepacked"
        got, expected = exe.run(inputs), ref.run(inputs)
    for name in expected:
        assert compare_output(name, expected[name], got[name], tolerance("fp32")).passed


def test_fast_mode_packs_fp32_linears_for_onednn_only_while_compiling_and_agrees():
    """Inductor packs fp32 linears for MKL; under fast on the CPU it takes its oneDNN branch
    (hwkit_torch.inductor_onednn), and only inside hwkit's own calls."""
    require_backend("cpu")
    require_backend("onnxruntime")
    from hwkit_torch import inductor_onednn, onednn

    if not onednn.available():
        pytest.skip("torch was built without oneDNN (mkldnn)")
    if not inductor_onednn.available():
        pytest.skip(f"torch {torch.__version__} lacks the Inductor internals hwkit_torch.inductor_onednn patches")
    from torch._inductor.fx_passes import mkldnn_fusion

    def packing_op() -> object:
        graph = torch.fx.Graph()
        weight = graph.placeholder("w")
        return mkldnn_fusion.CpuMkldnnDeviceOp().pack_linear_weight(graph, False, weight, 4).target

    with inductor_onednn.fp32_linears_on_onednn():
        assert packing_op() is torch.ops.mkldnn._reorder_linear_weight
    if torch._C.has_mkl:  # torch's own choice, restored outside
        assert packing_op() is torch.ops.mkl._mkl_reorder_linear_weight
    model = hwkit.Model.builtin("mlp")
    inputs = model.make_inputs(dims={"batch": 3}, seed=2)
    packed = _weight_packs()
    with hwkit.compile(model, "onnxruntime") as ref, hwkit.compile(model, "cpu", compile="fast", threads=1) as exe:
        got, expected = exe.run(inputs), ref.run(inputs)
    assert _weight_packs() > packed, "the linear weights were not frozen and prepacked"
    for name in expected:
        assert compare_output(name, expected[name], got[name], tolerance("fp32")).passed


@pytest.mark.slow
def test_fast_mode_recompiles_for_new_shapes_of_dynamic_axes_and_agrees(tmp_path):
    """torch 2.13's dynamo rewrote the GraphModule while compiling it, and the recompile for the
    second shape failed (hwkit_torch.compiled._Compiled); every shape must compile and agree."""
    require_backend("cpu")
    require_backend("onnxruntime")
    pytest.importorskip("transformers", reason="transformers (a development dependency) is not installed")
    import numpy as np

    import hf_models  # this folder's helpers: pytest puts the folder on sys.path

    model = hwkit.Model.load(hf_models.export_encoder("bert", tmp_path / "bert.onnx"))
    with hwkit.compile(model, "onnxruntime") as ref, hwkit.compile(model, "cpu", compile="fast", threads=1) as exe:
        for seed, (batch, seq) in enumerate([(1, 5), (3, 13)]):
            rng = np.random.default_rng(seed)
            mask = np.ones((batch, seq), np.int64)
            mask[0, seq - 2:] = 0  # padding: the attention mask takes part
            inputs = {"input_ids": rng.integers(0, hf_models.VOCAB, (batch, seq)).astype(np.int64),
                      "attention_mask": mask}
            got, expected = exe.run(inputs)["hidden"], ref.run(inputs)["hidden"]
            assert got.shape == (batch, seq, 32)
            agreement = compare_output("hidden", expected, got, tolerance("fp32"))
            assert agreement.passed, f"batch {batch}, seq {seq}: {agreement.to_dict()}"


def _range():
    """A graph torch.compile(fullgraph=True) refuses (torch 2.13): Range with bounds read from data
    (Inductor fails on it; NonZero and Unique compile)."""
    from onnx import TensorProto, helper

    import onnx_graphs as graphs

    return graphs.model([helper.make_node("Range", ["start", "limit", "delta"], ["y"])],
                        [helper.make_tensor_value_info(n, TensorProto.INT64, []) for n in ("start", "limit", "delta")],
                        [helper.make_tensor_value_info("y", TensorProto.INT64, ["n"])], [])


def test_row_120_auto_runs_eagerly_with_a_warning_where_torch_compile_refuses_the_graph(monkeypatch):
    require_backend("cpu")
    import numpy as np

    from hwkit_torch import compiled

    # The warm-up's random scalars make no valid range: the first run is ours, as for a model
    # without default sizes.
    monkeypatch.setattr(compiled, "warm_up", lambda executable, model: None)
    with hwkit.compile(hwkit.Model.load(_range()), "cpu", compile="auto") as exe:
        assert exe.options.compile == "auto", "settled before its first run"
        with pytest.warns(UserWarning, match=r"cpu: compile=auto runs '.*' eagerly: torch.compile failed on its first run"):
            got = exe.run({"start": np.array(2), "limit": np.array(11), "delta": np.array(3)})
        assert exe.options.compile == "off"
        np.testing.assert_array_equal(got["y"], [2, 5, 8])
        again = exe.run({"start": np.array(0), "limit": np.array(2), "delta": np.array(1)})  # eager from now on
    np.testing.assert_array_equal(again["y"], [0, 1])


@pytest.mark.slow
def test_auto_is_fast_where_torch_compile_takes_the_graph_and_the_bench_uses_it():
    require_backend("cpu")
    with hwkit.compile(hwkit.Model.builtin("mlp"), "cpu", compile="auto", threads=1) as exe:
        assert exe.options.compile == "fast"
    with hwkit.compile(hwkit.Model.builtin("mlp"), "cpu") as exe:
        assert exe.options.compile == "off"  # not timed: eager
    result = hwkit.bench("mlp", ["cpu"], threads=1, min_time=0.05, max_time=1.0, efficiency=False)
    (record,) = result.results
    assert record.ok, record.error
    assert record.options["compile"] == "fast" and record.timed_options == {"compile": "fast"}
    assert record.compile_s is not None and record.compile_s > record.summary.median  # compiled in compile()
