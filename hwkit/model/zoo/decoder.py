"""``decoder``: a Llama-style decoder LLM in the Hugging Face ONNX convention for generation
(docs/generation.md): token embeddings, pre-norm layers of RMSNorm, rotary position embeddings
(RoPE, cos/sin tables gathered by ``position_ids``), grouped-query attention with a KV cache
(``past_key_values.{i}.key|value`` in, ``present.{i}.key|value`` out) and a SwiGLU MLP, then a
final RMSNorm and an untied LM head. Batch, sequence and past lengths are dynamic; the causal
and padding mask is built in the graph from ``attention_mask`` ([batch, past + sequence]).

Written with ``onnx.helper`` like the other built-ins, so ``hwkit bench decoder`` needs no torch
and the bytes (and sha256) are the same everywhere; ``tests/generate/test_decoder_numerics.py``
checks it against a plain torch twin.
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from hwkit.model.zoo._graph import FLOAT, INT64, Graph

VOCAB, HIDDEN, LAYERS, HEADS, KV_HEADS, FF, MAX_POSITIONS = 8192, 512, 6, 8, 2, 1408, 1024
HEAD = HIDDEN // HEADS
GROUP = HEADS // KV_HEADS
ROPE_THETA = 10000.0
EPS = 1e-5
SUMMARY = (f"Llama-style decoder: {LAYERS} layers, hidden {HIDDEN}, {HEADS} query / {KV_HEADS} KV heads, "
           f"SwiGLU {FF}, RoPE, vocab {VOCAB}, {MAX_POSITIONS} positions, KV cache")
DEFAULT_DIMS = {"batch": 1, "sequence": 128, "past_sequence": 0, "total_sequence": 128}


def rope_tables() -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of RoPE, [MAX_POSITIONS, HEAD], each half repeated (the rotate-half layout)."""
    inv = 1.0 / ROPE_THETA ** (np.arange(0, HEAD, 2, dtype=np.float64) / HEAD)
    angles = np.outer(np.arange(MAX_POSITIONS, dtype=np.float64), inv)
    angles = np.concatenate([angles, angles], axis=1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def build(version: int) -> onnx.ModelProto:
    g = Graph("decoder", seed=4)
    embed = g.constant("model.embed_tokens.weight", g.weights.spread((VOCAB, HIDDEN), 1.0))
    cos, sin = rope_tables()
    g.constant("rope.cos", cos)
    g.constant("rope.sin", sin)
    for name, value in {"q_heads": [0, 0, HEADS, HEAD], "kv_heads": [0, 0, KV_HEADS, HEAD],
                        "groups": [0, KV_HEADS, GROUP, -1, HEAD], "ungroup": [0, HEADS, -1, HEAD],
                        "merge": [0, 0, HIDDEN], "axis1": [1], "axis2": [2], "axes12": [1, 2]}.items():
        g.constant(name, np.array(value, np.int64))
    g.constant("one_index", np.array(1, np.int64))
    g.constant("zero", np.array(0, np.int64))
    g.constant("step", np.array(1, np.int64))
    g.constant("scale", np.array(1.0 / math.sqrt(HEAD), np.float32))
    g.constant("eps", np.array(EPS, np.float32))
    g.constant("two", np.array(2.0, np.float32))
    g.constant("no_bias", np.array(0.0, np.float32))
    g.constant("masked", np.array(-1e4, np.float32))  # exp(-1e4 + small) is 0; finite in fp16 too
    mask = _attention_bias(g)
    rope = [g.op("Unsqueeze", [g.op("Gather", [t, "position_ids"], f"position.{t[5:]}.gather"), "axis1"], f"position.{t[5:]}")
            for t in ("rope.cos", "rope.sin")]
    x = g.op("Gather", [embed, "input_ids"], "model.embed")
    for i in range(LAYERS):
        x = _layer(g, x, i, mask, rope)
    x = _rms_norm(g, x, "model.norm")
    g.op("MatMul", [x, g.constant("lm_head.weight", g.weights.spread((HIDDEN, VOCAB), 1 / math.sqrt(HIDDEN)))],
         "logits")
    cache = [f"past_key_values.{i}.{part}" for i in range(LAYERS) for part in ("key", "value")]
    Signature = list[tuple[str, int, list[int | str]]]
    inputs: Signature = [("input_ids", INT64, ["batch", "sequence"]), ("attention_mask", INT64, ["batch", "total_sequence"]),
              ("position_ids", INT64, ["batch", "sequence"])]
    inputs += [(name, FLOAT, ["batch", KV_HEADS, "past_sequence", HEAD]) for name in cache]
    outputs: Signature = [("logits", FLOAT, ["batch", "sequence", VOCAB])]
    outputs += [(name.replace("past_key_values", "present"), FLOAT, ["batch", KV_HEADS, "total_sequence", HEAD])
                for name in cache]
    return g.model(inputs, outputs, SUMMARY, version)


def _attention_bias(g: Graph) -> str:
    """0 where query i may see key j (j <= past + i, and the mask is 1 there), else -1e4:
    [batch, 1, 1, sequence, total] to broadcast over (KV head, group)."""
    total = g.op("Gather", [g.op("Shape", ["attention_mask"], "mask.shape"), "one_index"], "mask.total")
    sequence = g.op("Gather", [g.op("Shape", ["input_ids"], "ids.shape"), "one_index"], "mask.sequence")
    past = g.op("Sub", [total, sequence], "mask.past")
    keys = g.op("Range", ["zero", total, "step"], "mask.keys")
    queries = g.op("Unsqueeze", [g.op("Range", [past, total, "step"], "mask.queries.range"), "axis1"], "mask.queries")
    causal = g.op("LessOrEqual", [keys, queries], "mask.causal")  # [sequence, total]
    padding = g.op("Cast", [g.op("Unsqueeze", ["attention_mask", "axes12"], "mask.padding.wide")],
                   "mask.padding", to=onnx.TensorProto.BOOL)  # [batch, 1, 1, total]
    allowed = g.op("And", [causal, padding], "mask.allowed")  # [batch, 1, sequence, total]
    bias = g.op("Where", [allowed, "no_bias", "masked"], "mask.bias")
    return g.op("Unsqueeze", [bias, "axis1"], "mask.bias.grouped")


def _layer(g: Graph, x: str, i: int, mask: str, rope: list[str]) -> str:
    name = f"model.layers.{i}"
    h = _rms_norm(g, x, f"{name}.input_layernorm")
    q = g.op("Reshape", [_linear(g, h, f"{name}.self_attn.q_proj", HIDDEN, HIDDEN), "q_heads"], f"{name}.q.heads")
    k = g.op("Reshape", [_linear(g, h, f"{name}.self_attn.k_proj", HIDDEN, KV_HEADS * HEAD), "kv_heads"], f"{name}.k.heads")
    v = g.op("Reshape", [_linear(g, h, f"{name}.self_attn.v_proj", HIDDEN, KV_HEADS * HEAD), "kv_heads"], f"{name}.v.heads")
    q, k, v = (g.op("Transpose", [t], f"{t}.t", perm=[0, 2, 1, 3]) for t in (q, k, v))  # [batch, heads, seq, head]
    q, k = _rotate(g, q, rope, f"{name}.q"), _rotate(g, k, rope, f"{name}.k")
    k = g.op("Concat", [f"past_key_values.{i}.key", k], f"present.{i}.key", axis=2)
    v = g.op("Concat", [f"past_key_values.{i}.value", v], f"present.{i}.value", axis=2)
    # Grouped-query attention without copying K/V: queries [b, kv, group, seq, head] against
    # keys [b, kv, 1, total, head], broadcast over the group.
    q = g.op("Reshape", [q, "groups"], f"{name}.q.grouped")
    kt = g.op("Unsqueeze", [g.op("Transpose", [k], f"{name}.k.t", perm=[0, 1, 3, 2]), "axis2"], f"{name}.k.grouped")
    vg = g.op("Unsqueeze", [v, "axis2"], f"{name}.v.grouped")
    scores = g.op("Mul", [g.op("MatMul", [q, kt], f"{name}.attn.scores"), "scale"], f"{name}.attn.scaled")
    scores = g.op("Add", [scores, mask], f"{name}.attn.masked")
    weights = g.op("Softmax", [scores], f"{name}.attn.softmax", axis=-1)
    att = g.op("Reshape", [g.op("MatMul", [weights, vg], f"{name}.attn.context"), "ungroup"], f"{name}.attn.heads")
    att = g.op("Reshape", [g.op("Transpose", [att], f"{name}.attn.t", perm=[0, 2, 1, 3]), "merge"], f"{name}.attn.merged")
    x = g.op("Add", [x, _linear(g, att, f"{name}.self_attn.o_proj", HIDDEN, HIDDEN)], f"{name}.attn.residual")
    h = _rms_norm(g, x, f"{name}.post_attention_layernorm")
    gate = _linear(g, h, f"{name}.mlp.gate_proj", HIDDEN, FF)
    up = _linear(g, h, f"{name}.mlp.up_proj", HIDDEN, FF)
    silu = g.op("Mul", [gate, g.op("Sigmoid", [gate], f"{name}.mlp.sigmoid")], f"{name}.mlp.silu")
    down = _linear(g, g.op("Mul", [silu, up], f"{name}.mlp.swiglu"), f"{name}.mlp.down_proj", FF, HIDDEN)
    return g.op("Add", [x, down], f"{name}.mlp.residual")


def _rotate(g: Graph, t: str, rope: list[str], name: str) -> str:
    """RoPE, rotate-half form: t * cos + concat(-t2, t1) * sin."""
    first, second = g.ops("Split", [t], [f"{name}.half1", f"{name}.half2"], axis=-1)
    turned = g.op("Concat", [g.op("Neg", [second], f"{name}.half2.neg"), first], f"{name}.turned", axis=-1)
    return g.op("Add", [g.op("Mul", [t, rope[0]], f"{name}.cos"), g.op("Mul", [turned, rope[1]], f"{name}.sin")],
                f"{name}.rope")


def _linear(g: Graph, x: str, name: str, fan_in: int, fan_out: int) -> str:
    """x @ W without a bias (Llama's projections have none); LeCun-like weights."""
    weight = g.constant(f"{name}.weight", g.weights.spread((fan_in, fan_out), 1 / math.sqrt(fan_in)))
    return g.op("MatMul", [x, weight], name)


def _rms_norm(g: Graph, x: str, name: str) -> str:
    """x / sqrt(mean(x²) + eps) * weight, over the hidden axis."""
    weight = g.constant(f"{name}.weight", g.weights.uniform((HIDDEN,), 0.8, 1.2))
    power = g.op("ReduceMean", [g.op("Pow", [x, "two"], f"{name}.square")], f"{name}.mean", axes=[-1], keepdims=1)
    scale = g.op("Sqrt", [g.op("Add", [power, "eps"], f"{name}.eps")], f"{name}.rms")
    return g.op("Mul", [g.op("Div", [x, scale], f"{name}.normed"), weight], name)
