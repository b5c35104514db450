"""The convention read from graphs: what each step is fed, and where the cache goes."""

from __future__ import annotations

import numpy as np
import onnx

from hwkit.generate import convention
from hwkit.model import Model
from hwkit.testing.generate_conformance import tiny_decoder


def test_the_decoders_convention():
    model = Model.builtin("decoder")
    conv = convention.read(model)
    assert conv.layers == 6 and conv.vocab == 8192 and conv.max_positions == 1024
    assert convention.token_range(model, conv) == 8192  # the embedding table's rows
    assert list(conv.cache.items())[:2] == [("present.0.key", "past_key_values.0.key"),
                                            ("present.0.value", "past_key_values.0.value")]
    assert conv.empty_cache(3)["past_key_values.5.value"].shape == (3, 2, 0, 64)


def test_each_step_is_fed_its_mask_and_positions():
    conv = convention.read(Model.load(tiny_decoder()))
    feeds = conv.feeds(np.array([[7], [9]]), past=5)
    assert feeds["attention_mask"].shape == (2, 6) and feeds["attention_mask"].all()
    assert feeds["position_ids"].tolist() == [[5], [5]]
    assert "use_cache_branch" not in feeds


def test_a_merged_decoder_takes_the_cache_branch_after_the_prefill():
    proto = tiny_decoder()
    proto.graph.input.append(onnx.helper.make_tensor_value_info("use_cache_branch", onnx.TensorProto.BOOL, [1]))
    conv = convention.read(Model.load(proto))
    assert conv.merged
    assert conv.feeds(np.array([[1, 2, 3]]), past=0)["use_cache_branch"].tolist() == [False]
    assert conv.feeds(np.array([[4]]), past=3)["use_cache_branch"].tolist() == [True]
