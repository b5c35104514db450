"""Which axes onnx2tf moved, and how each tensor goes back to the ONNX graph's layout.

onnx2tf computes convolutions channel-last: an NCHW tensor becomes NHWC. hwkit feeds and compares
tensors in the ONNX graph's own layout, so:

- inputs: every 3-, 4- and 5-D input is named in onnx2tf's ``keep_ncw_or_nchw_or_ncdhw_input_names``
  (onnx2tf refuses the option for other ranks, which it never transposes), so the converted
  model takes each input exactly as the ONNX graph declares it; the conversion child verifies that
  the converted model's input shapes agree with the graph's;
- outputs: onnx2tf keeps, per tensor, ``before_op_output_shape_trans`` in its ``tf_layers_dict``:
  whether it holds that tensor channel-last (the record its own later ops act on). A channel-last
  output of rank r goes back with ``[0, r-1, 1, ..., r-2]``, applied inside the exported graph.
  onnx2tf's ``model.onnx_output_layouts`` is not used: it copies the ``nhwc`` flag, which only
  spatial ops (Conv, pools, Resize, ...) set and which a kept input never carries, so
  ``x -> Relu -> y`` on a kept 3-D input is reported ONNX-layout while it is channel-last.
  onnx2tf computes ``before_op_output_shape_trans`` by comparing the tensor's TF and ONNX shapes;
  when both layouts have the graph's shape (every non-batch dim equal, 3x4x4, or dims TensorFlow
  does not know) that comparison is a guess (onnx2tf assumes channel-last, wrong for a Reshape
  1x16 -> 1x4x4). hwkit accepts a channel-last guess only when a spatial op recorded the tensor
  so (``nhwc``), or when only size-1 dims move (the values' order is the same), and refuses the
  model otherwise. Ranks other than 3-5 are never transposed (onnx2tf has no channel-last order
  for them; a record saying so only means TensorFlow lost a dim).

Pure Python: used by the conversion child and by tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hwkit.errors import CompileError

KEPT_RANKS = (3, 4, 5)  # the ranks onnx2tf transposes, and the only ones its keep option accepts


def inputs_to_keep(inputs: Sequence[Any]) -> list[str]:
    """The input names to pass as ``keep_ncw_or_nchw_or_ncdhw_input_names``."""
    return [spec.name for spec in inputs if spec.shape is not None and len(spec.shape) in KEPT_RANKS]


def back_to_onnx(rank: int, channel_last: bool) -> list[int]:
    """The permutation that turns onnx2tf's tensor of ``rank`` back into the ONNX layout."""
    if not channel_last or rank < 3:
        return list(range(rank))
    return [0, rank - 1, *range(1, rank - 1)]


def output_permutations(names: Sequence[str], ranks: Sequence[int],
                        records: Mapping[str, Mapping[str, Any]]) -> list[list[int]]:
    """One permutation per output, from onnx2tf's per-tensor records (``tf_layers_dict`` entries,
    keys ``before_op_output_shape_trans``, ``nhwc`` and ``tf_shape`` and ``onnx_shape``).

    Raises CompileError for an output whose layout onnx2tf's records do not settle: no record,
    records that contradict each other, or a tensor with the same shape in either layout
    that no spatial op recorded channel-last.
    """
    return [_permutation(name, rank, records.get(name)) for name, rank in zip(names, ranks)]


def _permutation(name: str, rank: int, record: Mapping[str, Any] | None) -> list[int]:
    if rank not in KEPT_RANKS:  # onnx2tf transposes no other rank: a "transposed" record means unknown dims
        return list(range(rank))
    transposed = None if record is None else record.get("before_op_output_shape_trans")
    if record is None or not isinstance(transposed, bool):
        raise CompileError(f"onnx2tf recorded no layout for output '{name}', so hwkit cannot put it back in the "
                           "ONNX graph's layout; use onnx2tf 1.29.24 (hwkit install tensorflow)")
    spatial = record.get("nhwc") is True  # a Conv, pool, Resize... made it channel-last
    if spatial and not transposed:
        raise CompileError(f"onnx2tf's records contradict each other on output '{name}' (channel-last for the op "
                           "that made it, not for onnx2tf's shape record), so hwkit cannot tell its layout")
    if transposed and not spatial and _ambiguous(rank, record.get("tf_shape"), record.get("onnx_shape")):
        raise CompileError(f"output '{name}' has the same shape in either layout (graph: {record.get('onnx_shape')}, "
                           f"onnx2tf: {record.get('tf_shape')}), so onnx2tf's record that it is channel-last is "
                           "a guess, and hwkit cannot tell whether it would come back transposed; export the "
                           "graph with static dims that differ (e.g. another length)")
    return back_to_onnx(rank, transposed)


def _ambiguous(rank: int, tf_shape: Sequence[int | None] | None, onnx_shape: Sequence[Any] | None) -> bool:
    """Whether both layouts fit the graph's shape (every dim after the first equal, 3x4x4, or
    unknown to TensorFlow) and would order the values differently (size-1 dims move none)."""
    if tf_shape is None or onnx_shape is None:
        return True
    rotated = permuted(tf_shape, back_to_onnx(rank, True))
    fits_both = not mismatch(onnx_shape, tf_shape) and not mismatch(onnx_shape, rotated)
    return fits_both and sum(1 for d in onnx_shape[1:] if d != 1) > 1


def mismatch(declared: Sequence[Any] | None, got: Sequence[int | None]) -> bool:
    """Whether the converted tensor's shape contradicts the ONNX declaration (a static dim
    differs, or the rank); symbolic and unknown dims agree with anything."""
    if declared is None:
        return False
    if len(declared) != len(got):
        return True
    return any(isinstance(d, int) and isinstance(g, int) and d != g for d, g in zip(declared, got))


def permuted(shape: Sequence[int | None], perm: Sequence[int]) -> list[int | None]:
    return [shape[axis] for axis in perm]
