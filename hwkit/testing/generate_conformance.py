"""Conformance for generation: a backend's own step session (``hwkit.backend.Stepper``) must
generate exactly what the core's generic numpy path does through ``execute``.

A plugin's tests call ``check_step_session("mine")``; it skips, with the reason, when the backend
cannot run here or offers no native session (the generic path then needs no check of its own).
``tiny_decoder`` builds a small graph in the generation convention whose logits depend on every
cached value, so a cache fed back wrongly (stale, reordered, a step late) changes the tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import hwkit
from hwkit.backend import Stepper
from hwkit.generate import convention
from hwkit.generate.loop import greedy
from hwkit.generate.session import NumpySession
from hwkit.model import Model
from hwkit.parity.agreement import compare_output
from hwkit.parity.tolerance import tolerance
from hwkit.testing.conformance import require_backend

VOCAB, WIDTH = 16, 4


def tiny_decoder(layers: int = 2, positions: int | None = 32, heads: int | str = 1,
                 presents: int | None = None, extra_input: str = "") -> onnx.ModelProto:
    """A decoder in the convention: logits = E[ids] + P[positions] + mean over the cache of each
    layer's keys and values, projected. ``presents`` fewer than ``layers`` drops present outputs
    (a broken export); ``heads`` a name makes the KV-head axis symbolic; ``extra_input`` adds an
    input outside the convention; ``positions`` None leaves position_ids out."""
    rng = np.random.default_rng(0)
    init = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name) for name, shape in
            (("E", (VOCAB, VOCAB)), ("K", (VOCAB, WIDTH)), ("V", (VOCAB, WIDTH)), ("M", (WIDTH, VOCAB)))]
    init.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    nodes = [helper.make_node("Gather", ["E", "input_ids"], ["embed"])]
    total = "embed"
    if positions:
        init.append(numpy_helper.from_array(rng.standard_normal((positions, VOCAB)).astype(np.float32), "P"))
        nodes += [helper.make_node("Gather", ["P", "position_ids"], ["pos"]),
                  helper.make_node("Add", [total, "pos"], ["with_pos"])]
        total = "with_pos"
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"])]
    if positions:
        inputs.append(helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "sequence"]))
    if extra_input:
        inputs.append(helper.make_tensor_value_info(extra_input, TensorProto.FLOAT, ["batch"]))
    outputs = []
    for i in range(layers):
        for part, table in (("key", "K"), ("value", "V")):
            past, present = f"past_key_values.{i}.{part}", f"present.{i}.{part}"
            inputs.append(helper.make_tensor_value_info(past, TensorProto.FLOAT, ["batch", heads, "past", WIDTH]))
            nodes += [helper.make_node("Gather", [table, "input_ids"], [f"new.{i}.{part}.flat"]),
                      helper.make_node("Mul", [f"new.{i}.{part}.flat", f"scale.{i}"], [f"new.{i}.{part}.scaled"]),
                      helper.make_node("Unsqueeze", [f"new.{i}.{part}.scaled", "axis1"], [f"new.{i}.{part}"]),
                      helper.make_node("Concat", [past, f"new.{i}.{part}"], [present], axis=2),
                      helper.make_node("ReduceMean", [present], [f"mean.{i}.{part}"], axes=[1, 2], keepdims=0),
                      helper.make_node("MatMul", [f"mean.{i}.{part}", "M"], [f"ctx.{i}.{part}.flat"]),
                      helper.make_node("Unsqueeze", [f"ctx.{i}.{part}.flat", "axis1"], [f"ctx.{i}.{part}"]),
                      helper.make_node("Add", [total, f"ctx.{i}.{part}"], [f"sum.{i}.{part}"])]
            total = f"sum.{i}.{part}"
            if presents is None or i < presents:
                outputs.append(helper.make_tensor_value_info(present, TensorProto.FLOAT, ["batch", heads, "total", WIDTH]))
        init.append(numpy_helper.from_array(np.array(1.0 + i, np.float32), f"scale.{i}"))
    nodes.append(helper.make_node("Identity", [total], ["logits"]))
    for node in nodes:
        node.name = node.output[0]  # named, so tests can point at one (tests/perturb_backend.py)
    outputs.insert(0, helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", VOCAB]))
    graph = helper.make_graph(nodes, "tiny_decoder", inputs, outputs, init)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hwkit-tests")
    proto.ir_version = 8
    return proto


def check_step_session(backend: str, model: Any = None, *, prompt: int = 6, new: int = 6, batch: int = 2,
                       options: Mapping[str, Any] | None = None) -> None:
    """Assert that ``backend``'s native session generates the generic path's tokens, with logits
    within the fp32 tolerance at every step and the same cache size at the end."""
    require_backend(backend)
    opened = Model.load(model if model is not None else tiny_decoder())
    conv = convention.read(opened)
    prompt_ids = np.random.default_rng(1).integers(0, convention.token_range(opened, conv), (batch, prompt))
    with hwkit.compile(opened, backend, **dict(options or {})) as exe:
        if not isinstance(exe, Stepper):
            pytest.skip(f"backend '{backend}' keeps no cache of its own (no step_session): the generic path serves it")
        generic = greedy(NumpySession(exe, conv.cache, conv.empty_cache(batch), ["logits"]), conv, prompt_ids, new, True)
        session = exe.step_session(conv.cache, conv.empty_cache(batch), ["logits"])
        try:
            native = greedy(session, conv, prompt_ids, new, True)
        finally:
            session.close()
    assert native.tokens.tolist() == generic.tokens.tolist(), f"{backend}: the native session generated other tokens"
    tol = tolerance("fp32")
    for step, (a, b) in enumerate(zip(generic.logits, native.logits)):
        agreement = compare_output(f"logits[{step}]", a, b, tol)
        assert agreement.passed, f"{backend}: native logits at step {step} differ by {agreement.max_abs:.3g}"
    assert native.cache_bytes == generic.cache_bytes, (
        f"{backend}: state_bytes() says {native.cache_bytes}, the cache holds {generic.cache_bytes}")
