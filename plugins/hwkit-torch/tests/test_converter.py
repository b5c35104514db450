"""hwkit_torch.fx.convert: error reporting, dynamic dims, buffers, torch.compile, parity with ORT."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from hwkit.errors import CompileError, HwkitError, ModelError, UnsupportedOpError
from hwkit_torch.fx import convert, supported_ops
import onnx_graphs as graphs  # this folder's helpers: pytest puts the folder on sys.path

ort = pytest.importorskip("onnxruntime")


def _ort(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _run(gm: torch.fx.GraphModule, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        out = gm(*[torch.from_numpy(v) for v in feeds.values()])
    assert isinstance(out, tuple)
    return [o.numpy() for o in out]


def _assert_matches_ort(m: onnx.ModelProto, feeds: dict[str, np.ndarray], atol: float = 1e-5) -> None:
    onnx.checker.check_model(m)
    ref = _ort(m, feeds)
    got = _run(convert(m), feeds)
    assert len(got) == len(ref)
    for r, g in zip(ref, got):
        assert g.shape == r.shape and g.dtype == r.dtype
        if np.issubdtype(r.dtype, np.floating):
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=atol)
        else:
            np.testing.assert_array_equal(g, r)


# ------------------------------------------------------------------ errors
def test_unsupported_ops_reported_all_at_once() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok"),
        helper.make_node("FancyOp", ["a"], ["b"], name="fancy_1"),
        helper.make_node("OtherOp", ["b"], ["c"], name="other"),
        helper.make_node("FancyOp", ["c"], ["y"], name="fancy_2"),
    ]
    m = graphs.model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [])
    with pytest.raises(UnsupportedOpError) as ei:
        convert(m, backend="cpu")
    err = ei.value
    assert err.backend == "cpu"
    assert err.ops == {"FancyOp": ["fancy_1", "fancy_2"], "OtherOp": ["other"]}
    assert "FancyOp" in str(err) and "OtherOp" in str(err)


def test_unsupported_attribute_value_is_an_unsupported_op() -> None:
    # Strings have no torch dtype; a 1-D Col2Im has no handler path: both reported together.
    nodes = [
        helper.make_node("Cast", ["x"], ["s"], to=TensorProto.STRING, name="to_str"),
        helper.make_node("Col2Im", ["cols", "img", "blk"], ["y"], name="c2i_3d"),
    ]
    vi = helper.make_tensor_value_info
    m = graphs.model(nodes, [vi("x", TensorProto.FLOAT, [2]), vi("cols", TensorProto.FLOAT, [1, 4, 4])],
                     [vi("s", TensorProto.STRING, [2]), vi("y", TensorProto.FLOAT, None)],
                     [graphs.ints("img", [2, 2, 2]), graphs.ints("blk", [1, 2, 2])])
    with pytest.raises(UnsupportedOpError) as ei:
        convert(m)
    assert ei.value.ops == {"Cast": ["to_str"], "Col2Im": ["c2i_3d"]}


def test_sub_byte_types_travel_in_carrier_dtypes() -> None:
    # INT4 has no torch dtype: it is carried as int8 holding the (wrapped) int4 values.
    nodes = [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT4)]
    m = graphs.model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                     [helper.make_tensor_value_info("y", TensorProto.INT4, [4])], [])
    (y,) = convert(m)(torch.tensor([1.7, -3.2, 9.0, -8.0]))
    assert y.dtype == torch.int8
    assert y.tolist() == [1, -3, -7, -8]


def test_invalid_graph_is_a_model_error() -> None:
    nodes = [helper.make_node("Relu", ["missing"], ["y"], name="r")]
    m = graphs.model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [])
    with pytest.raises(ModelError, match="missing"):
        convert(m)
    with pytest.raises(ModelError):
        convert("not a model")  # type: ignore[arg-type]


def test_handler_failures_are_hwkit_errors() -> None:
    # A Reshape to an impossible constant shape fails while folding: a CompileError, chained.
    nodes = [helper.make_node("Reshape", ["c", "s"], ["y"], name="bad")]
    m = graphs.model(nodes, [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                     [graphs.init("c", np.zeros(6, np.float32)), graphs.ints("s", [4, 4])])
    with pytest.raises(CompileError) as ei:
        convert(m)
    assert isinstance(ei.value, HwkitError) and ei.value.__cause__ is not None


def test_supported_ops_lists_handlers() -> None:
    ops = supported_ops()
    for needed in ("Conv", "Attention", "LayerNormalization", "RMSNormalization", "Resize",
                   "Loop", "If", "Scan", "GatherElements", "SequenceInsert"):
        assert ("", needed) in ops
    assert ("", "FancyOp") not in ops
    assert len(ops) > 150


# ------------------------------------------------------------------ structure
def test_dynamic_batch_stays_dynamic() -> None:
    m = graphs.vit_patch_embed()
    gm = convert(m)
    for batch in (1, 3):
        feeds = {"x": np.random.default_rng(batch).random((batch, 3, 16, 16), dtype=np.float32)}
        got = _run(gm, feeds)
        assert got[0].shape == (batch, 16, 16)
        np.testing.assert_allclose(got[0], _ort(m, feeds)[0], rtol=1e-4, atol=1e-5)
    # The batch size is read from the input, never baked in as a constant.
    assert ".size(0)" in gm.code


def test_static_shape_computations_fold_to_ints() -> None:
    m = graphs.vit_patch_embed()
    for d in m.graph.input[0].type.tensor_type.shape.dim[:1]:
        d.dim_value = 2
    gm = convert(m)
    code = gm.code
    assert "tolist" not in code and ".size(" not in code and "torch.tensor(" not in code
    assert "reshape([2, 16, -1])" in code


def test_initializers_become_buffers() -> None:
    m = graphs.small_cnn()
    gm = convert(m)
    buffers = dict(gm.named_buffers())
    assert "w0" in buffers and "wd" in buffers
    np.testing.assert_array_equal(buffers["w0"].numpy(), onnx.numpy_helper.to_array(m.graph.initializer[0]))
    get_attrs = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    assert {"w0", "wd", "ws1"} <= get_attrs
    assert not list(gm.parameters())


@pytest.mark.parametrize("which", ["cnn", "transformer_attention_op", "transformer_decomposed"])
def test_torch_compile_fullgraph(which: str) -> None:
    if which == "cnn":
        m, args = graphs.small_cnn(), (torch.rand(2, 3, 16, 16),)
    else:
        m = graphs.tiny_transformer(attention_op=which.endswith("op"))
        args = (torch.randint(0, 32, (2, 5)),)
    gm = convert(m)
    torch._dynamo.reset()
    compiled = torch.compile(gm, fullgraph=True, backend="aot_eager", dynamic=True)
    with torch.no_grad():
        got, ref = compiled(*args), gm(*args)
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r)


# ------------------------------------------------------------------ parity with onnxruntime
def test_cnn_matches_ort() -> None:
    """Depthwise conv, hardswish, squeeze-excite, bilinear Resize, ArgMax."""
    feeds = {"x": np.random.default_rng(1).random((2, 3, 16, 16), dtype=np.float32)}
    _assert_matches_ort(graphs.small_cnn(), feeds)


def test_vit_patch_embedding_matches_ort() -> None:
    feeds = {"x": np.random.default_rng(2).random((2, 3, 16, 16), dtype=np.float32)}
    _assert_matches_ort(graphs.vit_patch_embed(), feeds)


@pytest.mark.parametrize("attention_op", [True, False], ids=["attention_op", "matmul_softmax"])
def test_transformer_matches_ort(attention_op: bool) -> None:
    """Embedding Gather, RMSNorm, rotary embedding, causal attention, ArgMax."""
    feeds = {"ids": np.random.default_rng(3).integers(0, 32, (2, 6)).astype(np.int64)}
    _assert_matches_ort(graphs.tiny_transformer(attention_op), feeds)


def test_attention_variants_match_manual_reference() -> None:
    """GQA + boolean mask + explicit scale through SDPA agree with an explicit computation."""
    rng = np.random.default_rng(4)
    q, k, v = rng.random((1, 4, 3, 8), np.float32), rng.random((1, 2, 5, 8), np.float32), rng.random((1, 2, 5, 8), np.float32)
    mask = rng.random((3, 5)) > 0.3
    mask[:, 0] = True
    nodes = [helper.make_node("Attention", ["q", "k", "v", "m"], ["y"], scale=0.3)]
    vi = helper.make_tensor_value_info
    m = graphs.model(nodes, [vi("q", TensorProto.FLOAT, q.shape), vi("k", TensorProto.FLOAT, k.shape),
                             vi("v", TensorProto.FLOAT, v.shape), vi("m", TensorProto.BOOL, mask.shape)],
                     [vi("y", TensorProto.FLOAT, [1, 4, 3, 8])], [])
    (y,) = _run(convert(m), {"q": q, "k": k, "v": v, "m": mask})
    kk, vv = np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1)
    s = q @ kk.transpose(0, 1, 3, 2) * 0.3 + np.where(mask, 0, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(y, p @ vv, rtol=1e-5, atol=1e-6)


def test_negative_gather_indices_are_normalised() -> None:
    nodes = [helper.make_node("Gather", ["t", "i"], ["y"], axis=0),
             helper.make_node("GatherElements", ["t", "j"], ["z"], axis=1)]
    t = np.arange(12, dtype=np.float32).reshape(4, 3)
    vi = helper.make_tensor_value_info
    m = graphs.model(nodes, [vi("i", TensorProto.INT64, [2]), vi("j", TensorProto.INT64, [4, 1])],
                     [vi("y", TensorProto.FLOAT, [2, 3]), vi("z", TensorProto.FLOAT, [4, 1])],
                     [graphs.init("t", t)])
    feeds = {"i": np.array([-1, 0], np.int64), "j": np.array([[-1], [0], [1], [-3]], np.int64)}
    _assert_matches_ort(m, feeds)


class _TinyLM(torch.nn.Module):
    """Embedding, RMSNorm, causal SDPA and a residual: what torch's exporter emits for LMs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(50, 32)
        self.qkv = torch.nn.Linear(32, 96)
        self.norm = torch.nn.RMSNorm(32)
        self.out = torch.nn.Linear(32, 50)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.emb(ids))
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, 4, 8).permute(2, 0, 3, 1, 4)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(a.transpose(1, 2).reshape(b, s, d) + x)


def test_torch_exported_model_with_dynamic_dims() -> None:
    """A dynamo-exported graph (dynamic batch and sequence): ORT parity at two sizes, and
    torch.compile(fullgraph=True) of the converted module."""
    pytest.importorskip("onnxscript")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(_TinyLM().eval(), (torch.randint(0, 50, (2, 7)),), dynamo=True,
                                 dynamic_shapes={"ids": {0: "batch", 1: "seq"}}, verbose=False)
    m = prog.model_proto
    gm = convert(m)
    for shape in ((1, 5), (3, 9)):
        feeds = {m.graph.input[0].name: np.random.default_rng(0).integers(0, 50, shape).astype(np.int64)}
        (got,) = _run(gm, feeds)
        np.testing.assert_allclose(got, _ort(m, feeds)[0], rtol=1e-4, atol=1e-5)
    torch._dynamo.reset()
    compiled = torch.compile(gm, fullgraph=True, backend="aot_eager", dynamic=True)
    ids = torch.randint(0, 50, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(compiled(ids)[0], gm(ids)[0])


def test_pinning_a_dynamic_dim_is_an_error_not_a_silent_constant() -> None:
    # Reshape [N, 4] -> [32] only holds for N == 8, the example size shape tracking uses for
    # dynamic dims; the converter must refuse instead of baking 8 into later shapes.
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="pin"),
             helper.make_node("Shape", ["x"], ["y2"])]
    vi = helper.make_tensor_value_info
    m = graphs.model(nodes, [vi("x", TensorProto.FLOAT, ["N", 4])],
                     [vi("y", TensorProto.FLOAT, [32]), vi("y2", TensorProto.INT64, [2])],
                     [graphs.ints("s", [32])])
    with pytest.raises(CompileError, match="pin"):
        convert(m)
