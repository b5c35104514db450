"""Shape computations on dynamic dims stay symbolic: no dim is fixed, no data-dependent op is
emitted, and the converted graph is right at every size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from hwkit_torch.fx import convert
import onnx_graphs as graphs  # this folder's helpers: pytest puts the folder on sys.path

F32, I64 = TensorProto.FLOAT, TensorProto.INT64


def _targets(gm: torch.fx.GraphModule) -> set[str]:
    return {getattr(n.target, "__name__", str(n.target)) for n in gm.graph.nodes}


def test_exporter_expand_pattern_keeps_sizes():
    # What the TorchScript exporter writes before Expand: Where(Equal(shape, -1), 1, shape).
    nodes = [
        helper.make_node("Shape", ["x"], ["sh"]),
        helper.make_node("ConstantOfShape", ["four"], ["ones"], value=helper.make_tensor("v", I64, [1], [1])),
        helper.make_node("Mul", ["ones", "minus1"], ["neg"]),
        helper.make_node("Equal", ["sh", "neg"], ["eq"]),
        helper.make_node("Where", ["eq", "ones", "sh"], ["target"]),
        helper.make_node("Reshape", ["target", "flat"], ["target1d"]),
        helper.make_node("Expand", ["b", "target1d"], ["y"]),
    ]
    m = graphs.model(nodes, [helper.make_tensor_value_info("x", F32, ["B", 1, "S", "S"]),
                             helper.make_tensor_value_info("b", F32, [1, 1, 1, "S"])],
                     [helper.make_tensor_value_info("y", F32, None)],
                     [graphs.ints("four", [4]), graphs.ints("minus1", [-1]), graphs.ints("flat", [-1])])
    gm = convert(m)
    assert "_expand_rt" not in _targets(gm)  # the target shape was resolved to sizes
    for batch, seq in [(2, 3), (3, 5)]:
        b = torch.randn(1, 1, 1, seq)
        (y,) = gm(torch.zeros(batch, 1, seq, seq), b)
        np.testing.assert_array_equal(y.numpy(), np.broadcast_to(b.numpy(), (batch, 1, seq, seq)))


def test_range_over_a_size_is_arange_of_the_size():
    nodes = [
        helper.make_node("Shape", ["x"], ["sh"], start=1, end=2),
        helper.make_node("Squeeze", ["sh", "zero1"], ["n"]),
        helper.make_node("Range", ["zero", "n", "one"], ["y"]),
    ]
    m = graphs.model(nodes, [helper.make_tensor_value_info("x", F32, ["B", "S"])],
                     [helper.make_tensor_value_info("y", I64, None)],
                     [graphs.ints("zero1", [0]), graphs.init("zero", np.array(0, np.int64)),
                      graphs.init("one", np.array(1, np.int64))])
    gm = convert(m)
    assert "arange" in _targets(gm) and "_range" not in _targets(gm)
    for seq in (4, 9):
        (y,) = gm(torch.zeros(2, seq))
        assert y.tolist() == list(range(seq))


@pytest.mark.parametrize("batch_dims", [0, 1])
def test_gathernd_on_dynamic_dims(batch_dims):
    m = graphs.model([helper.make_node("GatherND", ["x", "i"], ["y"], batch_dims=batch_dims)],
                     [helper.make_tensor_value_info("x", F32, ["B", "S", 4]),
                      helper.make_tensor_value_info("i", I64, ["B", 1] if batch_dims else ["K", 2])],
                     [helper.make_tensor_value_info("y", F32, None)], [])
    gm = convert(m)  # used to refuse: the index wrap fixed B and S to the example size
    for batch, seq in [(2, 3), (5, 7)]:
        x = torch.randn(batch, seq, 4)
        if batch_dims:
            i = torch.tensor([[-1]] * batch)
            expected = x[:, -1]
        else:
            i = torch.tensor([[batch - 1, -1], [0, 0]])
            expected = torch.stack([x[-1, -1], x[0, 0]])
        (y,) = gm(x, i)
        torch.testing.assert_close(y, expected)


def test_an_op_that_needs_sizes_is_converted_per_shape():
    import hwkit
    from hwkit.errors import UnsupportedOpError
    from hwkit.parity.agreement import compare_output
    from hwkit.parity.tolerance import tolerance

    ort = pytest.importorskip("onnxruntime")
    # ConvTranspose with auto_pad needs the spatial sizes at conversion time.
    m = graphs.model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], auto_pad="SAME_UPPER")],
                     [helper.make_tensor_value_info("x", F32, ["N", 2, "H", "W"])],
                     [helper.make_tensor_value_info("y", F32, ["N", 3, "H2", "W2"])],
                     [graphs.init("w", graphs.rand(2, 3, 3, 3))])
    with pytest.raises(UnsupportedOpError):
        convert(m)
    model = hwkit.Model.load(m)
    session = ort.InferenceSession(m.SerializeToString())
    with hwkit.compile(model, "cpu", threads=1) as exe:
        for shape in [(1, 2, 4, 5), (2, 2, 7, 3), (1, 2, 4, 5)]:
            x = np.random.default_rng(sum(shape)).standard_normal(shape, dtype=np.float32)
            got = exe.run({"x": x})["y"]
            assert compare_output("y", session.run(None, {"x": x})[0], got, tolerance("fp32")).passed
        assert len(exe.module.cache) == 2  # one conversion per shape, reused
