"""Which axes onnx2tf moved, and how each tensor goes back to the ONNX graph's layout.

onnx2tf computes convolutions channel-last: an NCHW tensor becomes NHWC. hwkit feeds and compares
tensors in the ONNX graph's own layout, so:

- inputs: every 3-, 4- and 5-D input is named in onnx2tf's ``keep_ncw_or_nchw_or_ncdhw_input_names``
  (onnx2tf refuses the option for other ranks, which it never transposes), so the converted
  model takes each input exactly as the ONNX graph declares it; ``check_inputs`` verifies that
  the converted model's input shapes agree with the graph's;
- outputs: onnx2tf records, per ONNX output name, whether it left that tensor channel-last
  (``model.onnx_output_layouts``: its own per-tensor bookkeeping, not a guess from shapes, so a
  1x8x8x8 tensor is no ambiguity); a channel-last output of rank r goes back with the permutation
  ``[0, r-1, 1, ..., r-2]``, applied inside the exported graph.

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
                        layouts: Mapping[str, bool] | None) -> list[list[int]]:
    """One permutation per output, from onnx2tf's ``onnx_output_layouts`` record.

    Raises CompileError when onnx2tf did not record the layouts: deciding from shapes alone
    cannot tell NCHW from NHWC when dimensions are equal, so hwkit refuses to guess.
    """
    if layouts is None or any(name not in layouts for name in names):
        missing = [name for name in names if layouts is None or name not in layouts]
        raise CompileError(f"onnx2tf recorded no layout for output(s) {', '.join(missing)}, so hwkit cannot put "
                           "them back in the ONNX graph's layout; use onnx2tf>=1.29 (hwkit install tensorflow)")
    return [back_to_onnx(rank, bool(layouts[name])) for name, rank in zip(names, ranks)]


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
