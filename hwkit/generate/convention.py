"""The generation convention, read from a graph's names and shapes: the one Hugging Face ONNX
exports of decoder LLMs follow (optimum, transformers.js; docs/generation.md).

Inputs: ``input_ids`` [batch, sequence]; optional ``attention_mask`` [batch, past + sequence];
optional ``position_ids`` [batch, sequence]; ``past_key_values.{i}.key|value`` [batch, kv_heads,
past, head_dim]; optional ``use_cache_branch`` (a merged decoder: false at the prefill, true after).
Outputs: ``logits`` [batch, sequence, vocab]; ``present.{i}.key|value``, fed back as the pasts.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import numpy as np

from hwkit.errors import ModelError, OptionError
from hwkit.model import Model
from hwkit.model.inputs import IndexRange, index_ranges
from hwkit.model.specs import TensorSpec

PAST = re.compile(r"^past_key_values\.(\d+)\.(key|value)$")
PRESENT = re.compile(r"^present\.(\d+)\.(key|value)$")
KNOWN = {"input_ids", "attention_mask", "position_ids", "use_cache_branch"}


@dataclasses.dataclass(frozen=True)
class Convention:
    """Where a decoder keeps what generation needs; ``read`` builds it from a Model."""

    ids_dtype: str
    mask: bool  # has attention_mask
    positions: bool  # has position_ids
    merged: bool  # has use_cache_branch
    cache: dict[str, str]  # present output -> the past input it feeds at the next step
    past_specs: dict[str, TensorSpec]  # past input -> its spec
    vocab: int | None  # the logits' last axis, when the graph states it
    max_positions: int | None  # positions the graph can index (its position table), when it has one

    @property
    def layers(self) -> int:
        return len(self.cache) // 2

    def empty_cache(self, batch: int) -> dict[str, np.ndarray]:
        """The first step's pasts: past length 0."""
        return {name: np.zeros((batch, *_cache_dims(spec)), spec.dtype) for name, spec in self.past_specs.items()}

    def feeds(self, ids: np.ndarray, past: int) -> dict[str, np.ndarray]:
        """The inputs of one step other than the cache: ``ids`` [batch, sequence] after ``past``
        tokens (no padding: every row has the same length)."""
        batch, sequence = ids.shape
        feeds = {"input_ids": ids.astype(self.ids_dtype, copy=False)}
        if self.mask:
            feeds["attention_mask"] = np.ones((batch, past + sequence), np.int64)
        if self.positions:
            feeds["position_ids"] = np.broadcast_to(np.arange(past, past + sequence, dtype=np.int64), (batch, sequence)).copy()
        if self.merged:
            feeds["use_cache_branch"] = np.array([past > 0])
        return feeds

    def check_length(self, prompt: int, new: int) -> None:
        """Refuse a generation that would run past the model's position table."""
        if self.max_positions is not None and prompt + new - 1 > self.max_positions:
            raise OptionError(
                f"a prompt of {prompt} tokens plus {new} new ones needs {prompt + new - 1} positions, but the model's "
                f"position table has {self.max_positions}; use --prompt and --new that add up to at most "
                f"{self.max_positions + 1}")


def read(model: Model) -> Convention:
    """The model's convention, or a ModelError naming what is missing or inconsistent."""
    inputs = {s.name: s for s in model.inputs}
    outputs = {s.name: s for s in model.outputs}
    missing = [n for n in ("input_ids",) if n not in inputs] + [n for n in ("logits",) if n not in outputs]
    pasts = {n: s for n, s in inputs.items() if PAST.match(n)}
    presents = {n: s for n, s in outputs.items() if PRESENT.match(n)}
    if not pasts and not presents:
        missing.append("past_key_values.{i}.key|value inputs and present.{i}.key|value outputs")
    if missing:
        raise ModelError(
            f"'{model.name}' is not a generative decoder in the Hugging Face ONNX convention: it lacks "
            f"{', '.join(missing)} (inputs: {', '.join(inputs) or 'none'}); export it with its KV cache "
            "(docs/generation.md), or bench it without --generate")
    unpaired = sorted({n.replace("past_key_values", "present") for n in pasts} ^ set(presents))
    if unpaired:
        raise ModelError(
            f"'{model.name}' has {len(pasts)} past_key_values inputs but {len(presents)} present outputs; "
            f"without a partner: {', '.join(unpaired[:6])}{' …' if len(unpaired) > 6 else ''}: every "
            "present.{i}.key|value must feed past_key_values.{i}.key|value (re-export the model)")
    layers = sorted({int(PAST.match(n).group(1)) for n in pasts})  # type: ignore[union-attr]
    if layers != list(range(len(layers))) or len(pasts) != 2 * len(layers):
        raise ModelError(f"'{model.name}' has cache layers {layers}: they must be numbered 0..{len(layers) - 1}, "
                         "each with a key and a value (re-export the model)")
    others = sorted(set(inputs) - KNOWN - set(pasts))
    if others:
        raise ModelError(f"'{model.name}' has inputs outside the generation convention: {', '.join(others)}; "
                         f"generation feeds only {', '.join(sorted(KNOWN))} and the past_key_values (docs/generation.md)")
    for spec in pasts.values():
        _cache_dims(spec)
    logits = outputs["logits"]
    if logits.shape is not None and len(logits.shape) != 3:
        raise ModelError(f"'{model.name}' output {logits} must be [batch, sequence, vocab]: generation reads the "
                         "last position's logits at every step (re-export with logits for every position)")
    vocab = logits.shape[-1] if logits.shape and isinstance(logits.shape[-1], int) else None
    ids = inputs["input_ids"]
    if ids.dtype not in ("int64", "int32"):
        raise ModelError(f"'{model.name}' input_ids is {ids.dtype}; the convention has int64 (or int32) token ids")
    return Convention(
        ids_dtype=ids.dtype, mask="attention_mask" in inputs, positions="position_ids" in inputs,
        merged="use_cache_branch" in inputs,
        cache={name.replace("past_key_values", "present"): name for name in sorted(pasts, key=_order)},
        past_specs={name: pasts[name] for name in sorted(pasts, key=_order)},
        vocab=vocab, max_positions=_position_table(model, inputs),
    )


def token_range(model: Model, convention: Convention) -> int:
    """Token ids to draw prompts from: the embedding table's rows when the graph gathers from
    one, else the logits' vocabulary."""
    ranges = _ranges(model, {"input_ids": (1, 1)})
    found = ranges.get("input_ids")
    high = found.high if found is not None else None
    if high is None:
        high = convention.vocab
    if high is None:
        raise ModelError(f"'{model.name}' states neither its embedding table's size nor the logits' vocabulary size; "
                         "hwkit cannot draw valid token ids for it")
    return int(high)


def _position_table(model: Model, inputs: Mapping[str, TensorSpec]) -> int | None:
    """Rows of the table ``position_ids`` index (RoPE cos/sin, learned positions), when the graph
    gathers from one; None when positions are computed (the runtime's error then says more)."""
    if "position_ids" not in inputs:
        return None
    found = _ranges(model, {"position_ids": (1, 1)}).get("position_ids")
    return found.high if found is not None else None


def _ranges(model: Model, sizes: Mapping[str, tuple[int, int]]) -> dict[str, IndexRange]:
    """Index ranges with every dynamic axis at 1 (a size every model can be shaped to)."""
    shapes = {}
    for spec in model.inputs:
        if spec.shape is None:
            return {}
        shapes[spec.name] = tuple(d if isinstance(d, int) else (0 if _is_past_axis(spec, i) else 1)
                                  for i, d in enumerate(spec.shape))
    shapes.update({k: v for k, v in sizes.items() if k in shapes})
    return index_ranges(model.proto.graph, model.inputs, model.sizes(shapes).shapes)


def _is_past_axis(spec: TensorSpec, axis: int) -> bool:
    return bool(PAST.match(spec.name)) and axis == 2


def _cache_dims(spec: TensorSpec) -> tuple[int, int, int]:
    """(kv_heads, 0, head_dim) of a past input [batch, kv_heads, past, head_dim]."""
    shape = spec.shape
    if shape is None or len(shape) != 4 or not isinstance(shape[1], int) or not isinstance(shape[3], int):
        raise ModelError(f"cache input {spec} must be [batch, kv_heads, past, head_dim] with fixed kv_heads and "
                         "head_dim; re-export the model with those axes static")
    return shape[1], 0, shape[3]


def _order(name: str) -> tuple[int, str]:
    match = PAST.match(name)
    return (int(match.group(1)), match.group(2)) if match else (-1, name)
