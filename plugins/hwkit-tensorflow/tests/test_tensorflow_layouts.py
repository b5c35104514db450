"""Outputs come back in the ONNX graph's layout, decided from onnx2tf's per-tensor records
(``hwkit_tensorflow.layout``), or are refused where those records cannot decide."""

from __future__ import annotations

from typing import Any

import pytest

import hwkit

from hwkit_tensorflow import layout
from tensorflow_graphs import (
    agrees_with_onnxruntime,
    kept_3d_graph,
    skip_without_conversion_stack,
    tied_3d_graph,
)

skip_without_conversion_stack()


@pytest.mark.parametrize("backend", ["tensorflow", "litert"])
def test_kept_3d_inputs_through_elementwise_ops_and_conv1d_agree_with_onnxruntime(backend: str) -> None:
    meta = agrees_with_onnxruntime(kept_3d_graph(), backend, seed=12)
    # onnx2tf's onnx_output_layouts says y is not channel-last; its tensor record says it is.
    assert {entry["name"]: entry["permutation"] for entry in meta["outputs"]} == {"y": [0, 2, 1], "z": [0, 2, 1]}


def test_an_output_whose_dims_are_all_equal_is_refused_not_returned_transposed() -> None:
    model = hwkit.Model.load(tied_3d_graph())  # x: 3x4x4, the same shape in either layout
    with pytest.raises(hwkit.CompileError) as caught:
        hwkit.compile(model, "tensorflow")
    message = str(caught.value)
    assert "\n" not in message and "output 'y' has the same shape in either layout (graph: [3, 4, 4]" in message


def _record(transposed: bool | None, tf_shape: list[Any], onnx_shape: list[Any], nhwc: bool | None = None
            ) -> dict[str, Any]:
    record: dict[str, Any] = {"tf_shape": tf_shape, "onnx_shape": onnx_shape}
    if transposed is not None:
        record["before_op_output_shape_trans"] = transposed
    if nhwc is not None:
        record["nhwc"] = nhwc
    return record


@pytest.mark.parametrize(("record", "rank", "permutation"), [
    (_record(True, [3, 5, 4], [3, 4, 5], nhwc=False), 3, [0, 2, 1]),  # kept input -> Relu
    (_record(True, [1, 8, 8, 8], [1, 8, 8, 8], nhwc=True), 4, [0, 3, 1, 2]),  # a Conv vouches for the tie
    (_record(False, [2, 3, 5], [2, 3, 5]), 3, [0, 1, 2]),  # MatMul: onnx2tf turned it back
    (_record(False, [4, 4], [4, 4]), 2, [0, 1]),
    (_record(True, [None], [4]), 1, [0]),  # onnx2tf transposes no 1-D tensor: TensorFlow lost the dim
    (_record(True, [1, 1, 1], [1, 1, 1]), 3, [0, 2, 1]),  # a tie, but size-1 dims move no value
])
def test_the_permutation_follows_onnx2tfs_tensor_record(record: dict[str, Any], rank: int,
                                                        permutation: list[int]) -> None:
    assert layout.output_permutations(["y"], [rank], {"y": record}) == [permutation]


@pytest.mark.parametrize(("record", "rank", "words"), [
    # Reshape 1x16 -> 1x4x4: in the ONNX layout, yet onnx2tf's tie-break records it transposed.
    (_record(True, [1, 4, 4], [1, 4, 4]), 3, "the same shape in either layout"),
    (_record(True, [10, None, None], [10, 7, 3], nhwc=False), 3, "the same shape in either layout"),
    (_record(False, [1, 6, 7], [1, 6, 7], nhwc=True), 3, "contradict each other"),
    (_record(None, [3, 5, 4], [3, 4, 5]), 3, "recorded no layout"),
])
def test_a_layout_the_records_cannot_settle_is_refused(record: dict[str, Any], rank: int, words: str) -> None:
    with pytest.raises(hwkit.CompileError, match=words):
        layout.output_permutations(["y"], [rank], {"y": record})
    with pytest.raises(hwkit.CompileError, match="recorded no layout for output 'y'"):
        layout.output_permutations(["y"], [rank], {})
    assert layout.output_permutations(["y"], [2], {}) == [[0, 1]]  # onnx2tf never transposes a 2-D tensor
