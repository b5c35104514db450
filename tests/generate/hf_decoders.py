"""Tiny transformers decoders (random weights from configs) exported in the generation convention.

transformers is a development dependency: callers skip when it is absent. A small wrapper
flattens the cache: ``past_key_values.{i}.key|value`` inputs go into a ``DynamicCache``, and its
layers come back out as ``present.{i}.key|value``, as optimum's exports name them.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import torch

VOCAB, LAYERS = 128, 2
ARCHITECTURES = {"llama": (2, 8), "gpt2": (4, 8)}  # kind -> (KV heads, head size)


def _decoder(kind: str) -> torch.nn.Module:
    import transformers as tf

    if kind == "llama":  # RMSNorm, RoPE computed from position_ids (no table), GQA, SwiGLU
        return tf.LlamaForCausalLM(tf.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                                                  num_hidden_layers=LAYERS, num_attention_heads=4,
                                                  num_key_value_heads=2, max_position_embeddings=256))
    if kind == "gpt2":  # LayerNorm, a learned position table of 64 rows
        return tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=LAYERS, n_head=4, n_positions=64,
                                                bos_token_id=0, eos_token_id=0))
    raise ValueError(kind)


class _FlatCache(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from transformers import DynamicCache

        cache = DynamicCache()
        for i in range(LAYERS):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=cache, use_cache=True)
        presents = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)]
        return (out.logits, *presents)


def export_decoder(kind: str, path: Path) -> Path:
    """``kind`` exported to ``path`` with dynamic batch, sequence and past lengths."""
    torch.manual_seed(0)
    inner = _decoder(kind).eval()
    inner.config._attn_implementation = "eager"  # plain ops the TorchScript exporter writes as ONNX
    heads, size = ARCHITECTURES[kind]
    batch, sequence, past = 2, 3, 4
    pasts = [f"past_key_values.{i}.{part}" for i in range(LAYERS) for part in ("key", "value")]
    presents = [name.replace("past_key_values", "present") for name in pasts]
    example = (torch.randint(0, VOCAB, (batch, sequence)), torch.ones(batch, past + sequence, dtype=torch.int64),
               torch.arange(past, past + sequence).expand(batch, sequence),
               *[torch.randn(batch, heads, past, size) for _ in pasts])
    axes: dict[str, Any] = {"input_ids": {0: "batch", 1: "sequence"}, "position_ids": {0: "batch", 1: "sequence"},
                            "attention_mask": {0: "batch", 1: "total"}, "logits": {0: "batch", 1: "sequence"}}
    axes.update({n: {0: "batch", 2: "past"} for n in pasts})
    axes.update({n: {0: "batch", 2: "total"} for n in presents})
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the exporter talks a lot
        warnings.simplefilter("ignore")
        torch.onnx.export(_FlatCache(inner), example, str(path), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask", "position_ids", *pasts],
                          output_names=["logits", *presents], dynamic_axes=axes)
    return path
