"""The built-in ``decoder`` (written as ONNX with onnx.helper) is the Llama-style model its
docstring says: a plain torch twin, loaded with the graph's weights, gives the same logits."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import numpy_helper

from hwkit.model import Model
from hwkit.model.zoo import decoder as spec
from hwkit.testing.conformance import require_backend

torch = pytest.importorskip("torch", reason="the torch twin needs torch")
F = torch.nn.functional


def _rms(x, weight):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + spec.EPS) * weight


def _rotate(x, cos, sin):
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


def twin_logits(w, ids):
    """Llama's forward in plain torch: RMSNorm, RoPE, GQA (K/V repeated per group), SwiGLU."""
    batch, length = ids.shape
    positions = torch.arange(length)
    cos, sin = w["rope.cos"][positions], w["rope.sin"][positions]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    x = w["model.embed_tokens.weight"][ids]
    for i in range(spec.LAYERS):
        p = f"model.layers.{i}"
        h = _rms(x, w[f"{p}.input_layernorm.weight"])
        q = (h @ w[f"{p}.self_attn.q_proj.weight"]).view(batch, length, spec.HEADS, spec.HEAD).transpose(1, 2)
        k = (h @ w[f"{p}.self_attn.k_proj.weight"]).view(batch, length, spec.KV_HEADS, spec.HEAD).transpose(1, 2)
        v = (h @ w[f"{p}.self_attn.v_proj.weight"]).view(batch, length, spec.KV_HEADS, spec.HEAD).transpose(1, 2)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        k, v = k.repeat_interleave(spec.GROUP, dim=1), v.repeat_interleave(spec.GROUP, dim=1)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
        x = x + att.transpose(1, 2).reshape(batch, length, spec.HIDDEN) @ w[f"{p}.self_attn.o_proj.weight"]
        h = _rms(x, w[f"{p}.post_attention_layernorm.weight"])
        swiglu = F.silu(h @ w[f"{p}.mlp.gate_proj.weight"]) * (h @ w[f"{p}.mlp.up_proj.weight"])
        x = x + swiglu @ w[f"{p}.mlp.down_proj.weight"]
    return _rms(x, w["model.norm.weight"]) @ w["lm_head.weight"]


def test_the_decoder_matches_its_plain_torch_twin():
    require_backend("onnxruntime")
    import hwkit

    model = Model.builtin("decoder")
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.proto.graph.initializer}
    assert 20e6 < sum(w.numel() for w in weights.values()) < 50e6
    ids = np.random.default_rng(0).integers(0, spec.VOCAB, (2, 7))
    empty = {f"past_key_values.{i}.{p}": np.zeros((2, spec.KV_HEADS, 0, spec.HEAD), np.float32)
             for i in range(spec.LAYERS) for p in ("key", "value")}
    feeds = {"input_ids": ids, "attention_mask": np.ones((2, 7), np.int64),
             "position_ids": np.tile(np.arange(7), (2, 1)), **empty}
    with hwkit.compile(model, "onnxruntime") as exe:
        got = exe.run(feeds)["logits"]
    with torch.no_grad():
        expected = twin_logits(weights, torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-3)
    assert got[:, -1].std() > 0.5  # logits spread enough that greedy picks are not near ties
