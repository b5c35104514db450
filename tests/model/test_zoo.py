"""The built-in models: ONNX written by hwkit itself (no torch), the same bytes on every machine,
the documented signatures, and weights that make the runtimes do real work."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hwkit.model import Model
from hwkit.model.zoo import BUILTIN_MODELS as SINGLE_PASS
from hwkit.model.zoo import DEFAULT_MODEL, GENERATIVE_MODELS, ZOO_VERSION

BUILTIN_MODELS = {**SINGLE_PASS, **GENERATIVE_MODELS}

# A builder that changes these bytes must bump ZOO_VERSION (the cache file name carries it), then
# update the digests here: a user's cached copy of the old bytes must never be read as the new.
SHA256 = {
    "mlp": "4e6e23a516d7e352e621ad81ff8d5af43a582382c9b1424eb705e4f516e0e16c",
    "cnn": "0d51b552d272a65e078aa77763a8dda722c1670c33bead7d480e75881bcd7176",
    "encoder": "fc2644d188e331fd1234f71b50ebcc70439bb430bf3c58a7e389de41d76438d9",
    "decoder": "89d7f38fbe63904e73e8c6368eb19c0b72ff307a9ec0a2ce8f00bf84fd721f7f",
}
SIGNATURES = {
    "mlp": ([("x", "float32", ("batch", 784))], [("logits", "float32", ("batch", 10))]),
    "cnn": ([("x", "float32", ("batch", 3, 224, 224))], [("logits", "float32", ("batch", 1000))]),
    "encoder": ([("input_ids", "int64", ("batch", 128))], [("hidden_states", "float32", ("batch", 128, 256))]),
    "decoder": ([("input_ids", "int64", ("batch", "sequence")), ("attention_mask", "int64", ("batch", "total_sequence")),
                 ("position_ids", "int64", ("batch", "sequence"))]
                + [(f"past_key_values.{i}.{p}", "float32", ("batch", 2, "past_sequence", 64)) for i in range(6) for p in ("key", "value")],
                [("logits", "float32", ("batch", "sequence", 8192))]
                + [(f"present.{i}.{p}", "float32", ("batch", 2, "total_sequence", 64)) for i in range(6) for p in ("key", "value")]),
}
DEFAULT_DIMS = {"decoder": {"batch": 1, "sequence": 128, "past_sequence": 0, "total_sequence": 128}}


def test_every_builtin_is_pinned_here():
    assert set(BUILTIN_MODELS) == set(SHA256) == set(SIGNATURES) and DEFAULT_MODEL in BUILTIN_MODELS


@pytest.mark.parametrize("name", list(BUILTIN_MODELS))
def test_a_builtin_is_the_same_bytes_every_time(name):
    first = BUILTIN_MODELS[name].build(ZOO_VERSION).SerializeToString()
    assert first == BUILTIN_MODELS[name].build(ZOO_VERSION).SerializeToString()
    assert hashlib.sha256(first).hexdigest() == SHA256[name], "builder changed: bump ZOO_VERSION, update SHA256"
    assert Model.builtin(name).path.read_bytes() == first


@pytest.mark.parametrize("name", list(BUILTIN_MODELS))
def test_a_builtin_has_its_documented_signature(name):
    model = Model.builtin(name)
    inputs, outputs = SIGNATURES[name]
    assert [(s.name, s.dtype, s.shape) for s in model.inputs] == inputs
    assert [(s.name, s.dtype, s.shape) for s in model.outputs] == outputs
    assert model.default_dims == DEFAULT_DIMS.get(name, {"batch": 1}) and model.name == name
    assert [(o.domain, o.version) for o in model.proto.opset_import] == [("", 17)]
    assert model.proto.producer_name == "hwkit" and model.proto.producer_version == f"zoo{ZOO_VERSION}"
    assert model.proto.doc_string == BUILTIN_MODELS[name].summary


def _weights(model: Model) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.proto.graph.initializer}


def _ops(model: Model) -> Counter[str]:
    return Counter(node.op_type for node in model.proto.graph.node)


def test_the_cnn_is_resnet18_with_batchnorm_folded():
    model = Model.builtin("cnn")
    weights = _weights(model)
    convs = [n for n in model.proto.graph.node if n.op_type == "Conv"]
    assert len(convs) == 20 and _ops(model)["Add"] == 8  # 17 convolutions + 3 downsamplings; 8 blocks
    assert sum(w.size for w in weights.values()) == pytest.approx(11.7e6, rel=0.01)  # ResNet-18's count
    for conv in convs:
        weight, bias = weights[conv.input[1]], weights[conv.input[2]]
        fan_in = int(np.prod(weight.shape[1:]))
        assert 0.05 < weight.std() * np.sqrt(fan_in) < 2.0, conv.name  # Kaiming-like, times the BN scale
        assert bias.std() > 0.02, f"{conv.name}: the folded BatchNorm must leave a real bias"


def test_the_encoder_is_bert_like_with_in_range_token_ids():
    model = Model.builtin("encoder")
    weights, ops = _weights(model), _ops(model)
    assert ops["Softmax"] == 4 and ops["Erf"] == 4 and ops["LayerNormalization"] == 9
    (gather,) = [n for n in model.proto.graph.node if n.op_type == "Gather"]
    table = weights[gather.input[0]]
    assert gather.input[1] == "input_ids" and table.shape == (8192, 256)
    ids = model.make_inputs(dims={"batch": 4}, seed=9)["input_ids"]
    assert ids.min() >= 0 and ids.max() < table.shape[0] and len(np.unique(ids)) > 100
    gammas = [weights[n.input[1]] for n in model.proto.graph.node if n.op_type == "LayerNormalization"]
    assert all(g.std() > 0.05 for g in gammas), "LayerNorm scales must not be all ones"
    heads = weights["split_heads"]
    assert heads.tolist() == [0, 0, 4, 64]


def test_the_graphs_pass_the_full_onnx_check():
    for name in BUILTIN_MODELS:
        onnx.checker.check_model(Model.builtin(name).proto, full_check=True)
