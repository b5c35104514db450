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


def test_compiled_onednn_linear_packs_its_weight_once_and_agrees():
    require_backend("cpu")
    from hwkit_torch import onednn

    if not onednn.available():
        pytest.skip("torch was built without oneDNN (mkldnn)")
    x, weight, bias = torch.randn(2, 5, 16), torch.randn(8, 16), torch.randn(8)
    with torch.inference_mode():
        first = onednn.onednn_linear(x, weight, bias)
        packed = getattr(weight, onednn._PACKED)
        second = onednn.onednn_linear(x, weight, bias)
    assert packed.is_mkldnn and getattr(weight, onednn._PACKED) is packed, "packed again on the second call"
    expected = torch.nn.functional.linear(x, weight, bias).numpy()
    for got in (first, second):
        assert compare_output("y", expected, got.numpy(), tolerance("fp32")).passed
