"""hwkit.Model: loading, validation, signature, fingerprint, inputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hwkit import Model, ModelError
from tests.helpers import add_relu_model


def test_load_from_path_bytes_and_proto_agree(tmp_path):
    proto = add_relu_model(dynamic=True)
    path = tmp_path / "m.onnx"
    onnx.save(proto, path)
    from_path, from_bytes, from_proto = Model.load(path), Model.load(proto.SerializeToString()), Model.load(proto)
    assert from_path.name == "m" and from_path.path == path
    assert from_path.sha256 == from_bytes.sha256 == from_proto.sha256
    assert len(from_path.sha256) == 64
    assert [str(s) for s in from_path.inputs] == ["x: float32[batch,4]"]
    assert from_path.outputs[0].shape == ("batch", 4)


def test_fingerprint_changes_with_weights():
    a, b = add_relu_model(), add_relu_model()
    b.graph.initializer[0].float_data[0] = 9.0
    assert Model.load(a).sha256 != Model.load(b).sha256


def test_initializers_listed_as_inputs_are_not_inputs():
    proto = add_relu_model()
    proto.graph.input.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, [4]))
    assert [s.name for s in Model.load(proto).inputs] == ["x"]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "model file not found"),
        (b"this is certainly not a protobuf \xff\xfe", "not a readable ONNX model"),
        (b"PK\x03\x04rest-of-a-zip", "zip archive"),
        (b"", "not an ONNX model"),
    ],
)
def test_bad_files_are_model_errors(tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        Model.load(path)


def test_truncated_file(tmp_path):
    data = add_relu_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError):
        Model.load(path)


def test_invalid_graph_fails_the_checker():
    proto = add_relu_model()
    proto.graph.node[1].input[0] = "does_not_exist"
    with pytest.raises(ModelError, match="not a valid ONNX graph"):
        Model.load(proto)


def test_generated_inputs_are_seeded_and_never_zero():
    model = Model.load(add_relu_model(dynamic=True))
    a = model.make_inputs(dims={"batch": 3}, seed=1)["x"]
    b = model.make_inputs(dims={"batch": 3}, seed=1)["x"]
    c = model.make_inputs(dims={"batch": 3}, seed=2)["x"]
    assert a.shape == (3, 4) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.count_nonzero(a) == a.size


def test_integer_inputs_stay_inside_an_embedding_table():
    table = helper.make_tensor("table", TensorProto.FLOAT, [7, 2], np.arange(14, dtype=np.float32))
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["y"])], "emb",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 2])], [table],
    )
    model = Model.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    ids = model.make_inputs()["ids"]
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 7 and len(set(ids.tolist())) > 1


def test_unset_dynamic_dimension_names_the_fix():
    model = Model.load(add_relu_model(dynamic=True))
    with pytest.raises(ModelError, match=r"dynamic dimension\(s\) left unset: 'batch' \(x axis 0\).*--dim batch=1"):
        model.make_inputs()
    assert model.make_inputs(shapes={"x": (5, 4)})["x"].shape == (5, 4)


def test_shape_override_must_fit_static_dims():
    model = Model.load(add_relu_model(dynamic=True))
    with pytest.raises(ModelError, match="axis 1 must be 4"):
        model.make_inputs(shapes={"x": (2, 5)})
    with pytest.raises(ModelError, match="unknown dimension name"):
        model.make_inputs(dims={"batsh": 2})


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"y": np.ones((2, 4), np.float32)}, "unknown input name 'y'"),
        ({}, "missing input"),
        ({"x": np.ones((2, 4), np.float64)}, "must be float32, got float64"),
        ({"x": np.ones((2, 5), np.float32)}, "axis 1 must be 4"),
        ({"x": np.ones((4,), np.float32)}, "2 axes"),
    ],
)
def test_check_inputs_rejects_what_does_not_fit(inputs, message):
    with pytest.raises(ModelError, match=message):
        Model.load(add_relu_model()).check_inputs(inputs)


def test_check_inputs_turns_scalars_into_arrays():
    graph = helper.make_graph(
        [helper.make_node("Neg", ["s"], ["y"])], "scalar",
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
    )
    model = Model.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    checked = model.check_inputs({"s": np.float32(2.0)})
    assert isinstance(checked["s"], np.ndarray) and checked["s"].shape == ()


@pytest.mark.parametrize("name", ["mlp", "cnn", "encoder"])
def test_builtin_models(name):
    model = Model.builtin(name)
    assert model.name == name and model.path is not None and model.path.exists()
    assert model.inputs[0].shape[0] == "batch"
    inputs = model.make_inputs()
    assert next(iter(inputs.values())).shape[0] == 1
    assert Model.builtin(name).sha256 == model.sha256  # read back from the cache, unchanged


def test_unknown_builtin():
    with pytest.raises(ModelError, match="unknown built-in model 'resnet'"):
        Model.builtin("resnet")


def test_from_torch_exports_quietly_and_caches(capfd, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(tmp_path))
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    model = Model.from_torch(module, (torch.randn(1, 3),))
    out, err = capfd.readouterr()
    assert out == "" and err == "", "the exporter's chatter must not reach the terminal"
    assert [s.dtype for s in model.inputs] == ["float32"]
    cached = list((tmp_path / "exports").glob("*.onnx"))
    assert len(cached) == 1
    again = Model.from_torch(module, (torch.randn(1, 3),))
    assert again.sha256 == model.sha256 and len(list((tmp_path / "exports").glob("*.onnx"))) == 1
    with torch.no_grad():
        module[0].weight.add_(1.0)
    Model.from_torch(module, (torch.randn(1, 3),))
    assert len(list((tmp_path / "exports").glob("*.onnx"))) == 2, "new weights must not hit the old cache"


def test_from_torch_failure_is_a_model_error(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(tmp_path))

    class Bad(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow cannot be exported
                return x
            return -x

    with pytest.raises(ModelError, match="torch.onnx.export failed for Bad"):
        Model.from_torch(Bad(), (torch.randn(2),))


def test_sequence_and_optional_values_are_described_and_checked():
    seq = helper.make_value_info("xs", helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [None])))
    graph = helper.make_graph(
        [helper.make_node("SequenceLength", ["xs"], ["n"])], "seq", [seq],
        [helper.make_tensor_value_info("n", TensorProto.INT64, [])],
    )
    model = Model.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert str(model.inputs[0]) == "xs: seq(float32[?])" and model.inputs[0].kind == "sequence"
    checked = model.check_inputs({"xs": [np.ones(2, np.float32), np.zeros(3, np.float32)]})
    assert [a.shape for a in checked["xs"]] == [(2,), (3,)]
    with pytest.raises(ModelError, match="is a sequence: pass a list of arrays"):
        model.check_inputs({"xs": np.ones(2, np.float32)})
    with pytest.raises(ModelError, match="an element of input 'xs' must be float32"):
        model.check_inputs({"xs": [np.ones(2, np.int32)]})
    with pytest.raises(ModelError, match="cannot generate it"):
        model.make_inputs()
