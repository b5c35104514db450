"""Generated inputs, hardened (rows 28, 30 and 31 of docs/errors.md):

- a run whose inputs (every input set), outputs and intermediates cannot fit in the memory
  available is refused before anything is allocated (row 28);
- every unset dimension is named once, with sensible values that fix them all (row 30);
- inputs used as indices get values inside what they index, for every indexing op (row 31).
"""

from __future__ import annotations

import pickle
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import hwkit
from hwkit.testing import require_backend
from hwkit import Model, ModelError
from hwkit.cli import main
from hwkit.errors import InputMemoryError
from hwkit.model import shapes as shapes_module
from hwkit.model.specs import suggest_size
from hwkit.runner.plan import make_input_sets

F, I64, I32 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32
GiB = 1 << 30


def graph_model(nodes: list[onnx.NodeProto], inputs: Sequence[tuple[str, int, Any]],
                outputs: Sequence[tuple[str, int, Any]], initializers: Sequence[onnx.TensorProto] = (),
                opset: int = 18) -> Model:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs], list(initializers))
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    proto = helper.make_model(graph, opset_imports=opsets)
    proto.ir_version = 9
    return Model.load(proto)


def encoder_like() -> Model:
    """input_ids[batch, 128] -> an embedding table [100, 256] -> hidden[batch, 128, 256]."""
    table = helper.make_tensor("table", F, [100, 256], np.zeros(100 * 256, np.float32))
    model = graph_model([helper.make_node("Gather", ["table", "input_ids"], ["hidden"])],
                        [("input_ids", I64, ["batch", 128])], [("hidden", F, ["batch", 128, 256])], [table])
    model.name = "encoder"
    return model


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the CLI in-process: the exit code and the one stderr line it printed."""
    code = main(list(args))
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) <= 1, err
    return code, err[0] if err else ""


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Pretend the machine has 20 GiB available, so the figures in the messages are fixed."""
    monkeypatch.setattr(shapes_module, "available_memory", lambda: 20 * GiB)
    return 20 * GiB


# -- row 28: inputs that cannot fit in memory -------------------------------------------------

def test_row_28_inputs_that_cannot_fit_in_memory(memory, tmp_path: Path, capsys, fake_registry):
    path = tmp_path / "encoder.onnx"
    encoder_like().save(path)
    # bench: 4 input sets of int64[100000000, 128] = 4 x 95.4 GiB, refused before allocating
    code, err = cli(capsys, "bench", str(path), "--dim", "batch=100000000", "-b", "fake")
    assert code == 2 and err.startswith("hwkit: error: a run of 'encoder' at batch=100000000 needs at least 381.5 GiB")
    assert "(4 input sets), more than the 20.0 GiB available; lower --dim batch or use fewer input sets" in err
    code, err = cli(capsys, "bench", str(path), "--dim", "batch=100000000", "-b", "fake", "--input-sets", "1")
    assert code == 2 and "needs at least 95.4 GiB (inputs)" in err and "fewer input sets" not in err
    code, err = cli(capsys, "check", str(path), "--dim", "batch=30000000", "-b", "fake,fake", "--seeds", "2")
    assert code == 2 and "needs at least 57.2 GiB (2 input sets)" in err
    code, err = cli(capsys, "run", str(path), "--shape", "input_ids=100000000x128")
    assert code == 2 and "at input_ids=100000000x128" in err and "lower --shape input_ids" in err
    # the library: the same error, a ModelError too
    model = encoder_like()
    for call in (lambda: hwkit.bench(model, ["fake"], dims={"batch": 10**8}),
                 lambda: hwkit.check(model, ["fake", "fake"], dims={"batch": 10**8}),
                 lambda: model.make_inputs(dims={"batch": 10**8}),
                 lambda: make_input_sets(model, batch=10**8, count=2)):
        with pytest.raises(InputMemoryError, match="needs at least") as caught:
            call()
        assert isinstance(caught.value, ModelError) and caught.value.available == memory
    assert "lower --batch or use fewer input sets" in str(caught.value)


def test_outputs_and_intermediate_tensors_are_counted(memory):
    """Small inputs, but an output (or an intermediate) of n x n floats."""
    outer = [helper.make_node("Transpose", ["x"], ["xt"]), helper.make_node("MatMul", ["x", "xt"], ["square"])]
    model = graph_model(outer, [("x", F, ["n", 1])], [("square", F, ["n", "n"])])
    with pytest.raises(InputMemoryError, match=r"at n=100000 needs at least 37.3 GiB \(inputs, outputs"):
        model.make_inputs(dims={"n": 100_000})
    reduced = graph_model([*outer, helper.make_node("ReduceSum", ["square"], ["total"], keepdims=0)],
                          [("x", F, ["n", 1])], [("total", F, [])])
    with pytest.raises(InputMemoryError, match=r"\(inputs, outputs, intermediate tensors\)"):
        reduced.make_inputs(dims={"n": 100_000})
    assert reduced.make_inputs(dims={"n": 1000})["x"].shape == (1000, 1)


def test_output_dims_nothing_can_size_are_not_guessed(memory):
    """NonZero's output size depends on the data: it is skipped, never refused or guessed."""
    model = graph_model([helper.make_node("NonZero", ["x"], ["where"])], [("x", F, ["n"])], [("where", I64, [1, "k"])])
    sizes = model.sizes(model.resolve_shapes(dims={"n": 1000}))
    assert sizes.shapes["x"] == (1000,) and sizes.shapes["where"] == (1, None) and sizes.nbytes("where") is None
    assert model.make_inputs(dims={"n": 1000})["x"].shape == (1000,)


def test_sizes_beyond_any_array_are_refused(memory):
    model = encoder_like()
    for batch in (10**30, 2**60):
        with pytest.raises(InputMemoryError, match="would be larger than any array can be.*lower --dim batch"):
            model.make_inputs(dims={"batch": batch})
    pair = graph_model([helper.make_node("Identity", ["x"], ["y"])], [("x", F, ["a", "b"])], [("y", F, ["a", "b"])])
    with pytest.raises(InputMemoryError, match="larger than any array"):  # numpy refuses it even beside an empty axis
        pair.make_inputs(dims={"a": 0, "b": 2**62})
    assert model.make_inputs(dims={"batch": 0})["input_ids"].shape == (0, 128)  # zero stays allowed
    with pytest.raises(ModelError, match="negative size"):
        model.make_inputs(dims={"batch": -1})


def test_the_flag_named_is_the_one_that_sized_the_largest_input(memory):
    many_sets = graph_model([helper.make_node("Identity", ["x"], ["y"])], [("x", F, ["batch", 1000])],
                            [("y", F, ["batch", 1000])])
    with pytest.raises(InputMemoryError, match=r"at batch=1 needs .*; use fewer input sets$"):
        make_input_sets(many_sets, dims={"batch": 1}, count=10**7)
    pair = graph_model([helper.make_node("Add", ["a", "b"], ["y"])], [("a", F, ["n", 1]), ("b", F, [1, "m"])],
                       [("y", F, ["n", "m"])])
    with pytest.raises(InputMemoryError, match=r"lower --shape a$"):
        pair.make_inputs(shapes={"a": (10**11, 1)}, dims={"m": 2})
    with pytest.raises(InputMemoryError, match=r"lower --dim m$"):
        pair.make_inputs(dims={"n": 2, "m": 10**11})
    static = graph_model([helper.make_node("Identity", ["x"], ["y"])], [("x", F, [10**6, 10**5])],
                         [("y", F, [10**6, 10**5])])
    with pytest.raises(InputMemoryError, match=r"needs at least 372.5 GiB \(inputs\), .*; run it where more memory is free$"):
        static.make_inputs()


def test_the_margin_leaves_memory_to_the_runtimes(monkeypatch):
    need = 4 * 1000 * 128 * 8  # 4 input sets; the outputs are counted next
    model = encoder_like()
    monkeypatch.setattr(shapes_module, "available_memory", lambda: int(need / 0.9))
    with pytest.raises(InputMemoryError, match=r"too much of the .* available \(hwkit leaves 20% to the runtimes\)"):
        make_input_sets(model, dims={"batch": 1000}, count=4)
    monkeypatch.setattr(shapes_module, "available_memory", lambda: 64 * GiB)
    assert len(make_input_sets(model, dims={"batch": 1000}, count=4).sets) == 4


def test_the_error_survives_pickling():
    error = InputMemoryError("a run needs at least 1 GiB", 1 << 30, 1 << 20)
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.needed, again.available) == (str(error), error.needed, error.available)


# -- row 30: unset dimensions, named once ----------------------------------------------------

def bert_like(extra: Sequence[tuple[str, int, Any]] = ()) -> Model:
    ids, mask = ("input_ids", I64, ["batch", "sequence"]), ("attention_mask", I64, ["batch", "sequence"])
    table = helper.make_tensor("table", F, [50, 4], np.ones(200, np.float32))
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["h"]),
             helper.make_node("Cast", ["attention_mask"], ["m"], to=F),
             helper.make_node("Unsqueeze", ["m", "axes"], ["m3"]),
             helper.make_node("Mul", ["h", "m3"], ["y"])]
    axes = helper.make_tensor("axes", I64, [1], [2])
    extra_nodes = [helper.make_node("Identity", [name], [f"{name}_out"]) for name, _, _ in extra]
    outputs = [("y", F, ["batch", "sequence", 4]), *((f"{n}_out", t, s) for n, t, s in extra)]
    return graph_model(nodes + extra_nodes, [ids, mask, *extra], outputs, [table, axes])


def suggested_flags(message: str) -> list[str]:
    """The flags the error proposes, as a shell would split them."""
    return shlex.split(re.search(r"set them with (.*?) \(", message).group(1).replace(" (every axis)", ""))


def test_row_30_unset_dimensions_named_once_with_values_that_fix_them(tmp_path: Path, capsys):
    require_backend("onnxruntime")
    path = tmp_path / "bert.onnx"
    bert_like().save(path)
    code, err = cli(capsys, "run", str(path))
    assert code == 2
    assert err == ("hwkit: error: dynamic dimension(s) left unset: 'batch' (input_ids axis 0, attention_mask axis 0), "
                   "'sequence' (input_ids axis 1, attention_mask axis 1); set them with --dim batch=1 "
                   "--dim sequence=128 (dims={'batch': 1, 'sequence': 128} in the API)")
    code, _ = cli(capsys, "run", str(path), *suggested_flags(err))  # pasted as proposed, it runs
    assert code == 0
    with pytest.raises(ModelError) as caught:
        Model.load(path).make_inputs(dims={"batch": 2})  # what is set is not asked again
    assert "'sequence'" in str(caught.value) and "--dim batch" not in str(caught.value)


def test_unnamed_dims_need_a_whole_shape_for_those_inputs_only(tmp_path: Path, capsys):
    require_backend("onnxruntime")
    model = bert_like([("pixels", F, [None, 3, None, None]), ("boxes", F, ["batch", "num_boxes", 4]),
                       ("odd", F, ["past_sequence_length + 1"])])
    path = tmp_path / "mixed.onnx"
    model.save(path)
    code, err = cli(capsys, "run", str(path))
    assert code == 2
    for needle in ("'batch' (input_ids axis 0, attention_mask axis 0, boxes axis 0)", "unnamed axes of 'pixels'",
                   "--dim batch=1 --dim sequence=128 --dim num_boxes=16 --dim 'past_sequence_length + 1=128' "
                   "--shape pixels=1x3x224x224",
                   "guessed: the unnamed axes of 'pixels', num_boxes=16, use your model's sizes"):
        assert needle in err, (needle, err)
    assert "--shape input_ids" not in err and "--shape boxes" not in err
    code, _ = cli(capsys, "run", str(path), *suggested_flags(err))
    assert code == 0


def test_an_input_of_unknown_rank_needs_every_axis():
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", F, None)],
                              [helper.make_tensor_value_info("y", F, None)])
    with pytest.raises(ModelError, match=r"'x' \(rank unknown\); set them with --shape x=AxBx\.\.\. \(every axis\)"):
        Model(helper.make_model(graph)).make_inputs()


@pytest.mark.parametrize("name, size, guessed", [
    ("batch", 1, False), ("batch_size", 1, False), ("N", 1, False), ("batchSize", 1, False),
    ("sequence", 128, False), ("seq_len", 128, False), ("sequence_length", 128, False),
    ("past_sequence_length", 128, False), ("num_tokens", 128, False), ("encoder_sequence_length + 1", 128, False),
    ("height", 224, False), ("width", 224, False), ("image_h", 224, False),
    ("num_boxes", 16, True), ("s0", 16, True), ("heads", 16, True),
])
def test_suggested_sizes_by_name(name: str, size: int, guessed: bool):
    assert suggest_size(name) == (size, guessed)


# -- row 31: generated indices stay inside what they index ----------------------------------

def table(name: str, rows: int, cols: int = 2) -> onnx.TensorProto:
    return helper.make_tensor(name, F, [rows, cols], np.zeros(rows * cols, np.float32))


def branch(table_name: str, rows: int) -> onnx.GraphProto:
    """An If branch that looks the outer input ``i`` up in the outer ``table_name``."""
    return helper.make_graph([helper.make_node("Gather", [table_name, "i"], [f"y_{table_name}"])], table_name, [],
                             [helper.make_tensor_value_info(f"y_{table_name}", F, [30, 2])])


# name: (model, dims, {input: the exclusive bound of its values per last-axis position}); each bound
# is below the default 10 somewhere, so [0, 10) would fail.
INDEXING = {
    "gather_on_an_input": (lambda: graph_model([helper.make_node("Gather", ["d", "i"], ["y"], axis=-1)],
                                                [("d", F, ["n", "rows"]), ("i", I64, [40])], [("y", F, ["n", 40])]),
                           {"n": 2, "rows": 7}, {"i": [7]}),
    "gather_elements": (lambda: graph_model([helper.make_node("GatherElements", ["d", "i"], ["y"], axis=1)],
                                            [("d", F, [3, 5]), ("i", I64, [3, 40])], [("y", F, [3, 40])]),
                        {}, {"i": [5]}),
    "scatter_elements": (lambda: graph_model([helper.make_node("ScatterElements", ["d", "i", "u"], ["y"], axis=1)],
                                             [("d", F, [4, 6]), ("i", I64, [4, 5]), ("u", F, [4, 5])],
                                             [("y", F, [4, 6])]), {}, {"i": [6]}),
    "gathernd": (lambda: graph_model([helper.make_node("GatherND", ["d", "i"], ["y"])],
                                     [("d", F, [5, 17, 2]), ("i", I64, [60, 2])], [("y", F, [60, 2])]),
                 {}, {"i": [5, 17]}),
    "gathernd_batch_dims": (lambda: graph_model([helper.make_node("GatherND", ["d", "i"], ["y"], batch_dims=1)],
                                                [("d", F, [3, 6, 7]), ("i", I64, [3, 20, 1])], [("y", F, [3, 20, 7])]),
                            {}, {"i": [6]}),
    "scatternd": (lambda: graph_model([helper.make_node("ScatterND", ["d", "i", "u"], ["y"])],
                                      [("d", F, [5, 7]), ("i", I64, [30, 2]), ("u", F, [30])], [("y", F, [5, 7])]),
                  {}, {"i": [5, 7]}),
    "onehot": (lambda: graph_model([helper.make_node("OneHot", ["i", "depth", "values"], ["y"])],
                                   [("i", I64, [30])], [("y", F, [30, 4])],
                                   [helper.make_tensor("depth", I64, [], [4]),
                                    helper.make_tensor("values", F, [2], [0, 1])]),
               {}, {"i": [4]}),
    "embedding_through_cast": (lambda: graph_model([helper.make_node("Cast", ["i"], ["c"], to=I64),
                                                    helper.make_node("Gather", ["t", "c"], ["y"])],
                                                   [("i", I32, [60])], [("y", F, [60, 2])], [table("t", 7)]),
                               {}, {"i": [7]}),
    "float_ids_through_cast": (lambda: graph_model([helper.make_node("Cast", ["i"], ["c"], to=I64),
                                                    helper.make_node("Gather", ["t", "c"], ["y"])],
                                                   [("i", F, [60])], [("y", F, [60, 2])], [table("t", 37)]),
                               {}, {"i": [37]}),
    "reshape_then_two_tables": (lambda: graph_model(
        [helper.make_node("Reshape", ["i", "flat"], ["r"]), helper.make_node("Gather", ["a", "r"], ["ya"]),
         helper.make_node("Gather", ["b", "i"], ["yb"])],
        [("i", I64, ["batch", 30])], [("ya", F, [None, 2]), ("yb", F, ["batch", 30, 2])],
        [table("a", 40), table("b", 6), helper.make_tensor("flat", I64, [1], [-1])]), {"batch": 2}, {"i": [6]}),
    "scalar_index": (lambda: graph_model([helper.make_node("Gather", ["t", "i"], ["y"])], [("i", I64, [])],
                                         [("y", F, [2])], [table("t", 1)]), {}, {"i": [1]}),
    "inside_an_if_branch": (lambda: graph_model(
        [helper.make_node("If", ["c"], ["y"], then_branch=branch("t1", 4), else_branch=branch("t2", 9))],
        [("c", TensorProto.BOOL, []), ("i", I64, [30])], [("y", F, [30, 2])], [table("t1", 4), table("t2", 9)]),
        {}, {"i": [4]}),
    "embed_layer_normalization": (lambda: graph_model(
        [helper.make_node("EmbedLayerNormalization", ["ids", "segments", "words", "positions", "types", "gamma",
                                                      "beta"], ["y", "mask_index"], domain="com.microsoft")],
        [("ids", I32, [2, 16]), ("segments", I32, [2, 16])], [("y", F, [2, 16, 4]), ("mask_index", I32, [2])],
        [table("words", 9, 4), table("positions", 16, 4), table("types", 2, 4),
         helper.make_tensor("gamma", F, [4], np.ones(4, np.float32)), helper.make_tensor("beta", F, [4], np.zeros(4))]),
        {}, {"ids": [9], "segments": [2]}),
    "reverse_sequence_lengths": (lambda: graph_model(
        [helper.make_node("ReverseSequence", ["x", "lens"], ["y"], time_axis=0, batch_axis=1)],
        [("x", F, [6, 40, 3]), ("lens", I64, [40])], [("y", F, [6, 40, 3])]), {}, {"lens": [7]}),
    "topk_k": (lambda: graph_model([helper.make_node("TopK", ["x", "k"], ["v", "at"])],
                                   [("x", F, [3, 5]), ("k", I64, [1])], [("v", F, [3, "k"]), ("at", I64, [3, "k"])]),
               {}, {"k": [6]}),
    "cumsum_axis": (lambda: graph_model([helper.make_node("CumSum", ["x", "axis"], ["y"])],
                                        [("x", F, [3, 5]), ("axis", I64, [])], [("y", F, [3, 5])]), {}, {"axis": [2]}),
    "roialign_batch_indices": (lambda: graph_model(
        [helper.make_node("RoiAlign", ["x", "rois", "bi"], ["y"], output_height=2, output_width=2)],
        [("x", F, [3, 1, 8, 8]), ("rois", F, [20, 4]), ("bi", I64, [20])], [("y", F, [20, 1, 2, 2])]), {}, {"bi": [3]}),
}


@pytest.mark.parametrize("case", sorted(INDEXING))
def test_row_31_generated_indices_stay_inside_what_they_index(case: str):
    require_backend("onnxruntime")
    build, dims, bounds = INDEXING[case]
    model = build()
    inputs = model.make_inputs(dims=dims, seed=3)
    for name, highs in bounds.items():
        values = inputs[name]
        assert np.array_equal(values, np.round(values)) and values.min() >= 0, (name, values)
        columns = values.reshape(-1, len(highs)) if len(highs) > 1 else values.reshape(-1, 1)
        for column, high in zip(columns.T, highs):
            spans = len(np.unique(column)) > 1 or high == 1 or column.size == 1  # where the range allows
            assert column.max() < high and spans, (name, high, column)
    with hwkit.compile(model, "onnxruntime") as exe:
        exe.run(inputs)  # onnxruntime rejects any index out of range


def test_gathernd_columns_are_bounded_each_by_its_own_axis():
    model, _, _ = INDEXING["gathernd"]
    i = model().make_inputs(seed=1)["i"]
    assert i[:, 0].max() < 5 and i[:, 1].max() >= 10  # the second column uses its longer axis, past the default


def test_scatter_indices_never_repeat_where_they_could_collide():
    """Repeated scatter indices leave the result to the order a runtime writes in."""
    elements = INDEXING["scatter_elements"][0]().make_inputs(seed=2)["i"]
    assert all(len(set(row)) == len(row) for row in elements.tolist())
    rows = INDEXING["scatternd"][0]().make_inputs(seed=2)["i"]
    assert len({tuple(r) for r in rows.tolist()}) == len(rows)


def test_unknown_ranges_keep_the_default_but_never_pass_a_known_size():
    """An index into a tensor nothing can size keeps [0, 10); a mask stays all ones."""
    unsized = graph_model([helper.make_node("NonZero", ["x"], ["nz"]),
                           helper.make_node("Gather", ["nz", "i"], ["y"], axis=1)],
                          [("x", F, [6]), ("i", I64, [50])], [("y", I64, [1, 50])])
    values = unsized.make_inputs()["i"]
    assert values.min() >= 0 and values.max() < 10 and len(np.unique(values)) > 1
    small = graph_model([helper.make_node("Gather", ["t", "i"], ["y"])], [("i", I64, [50])], [("y", F, [50, 2])],
                        [table("t", 3)])
    assert set(small.make_inputs()["i"].tolist()) == {0, 1, 2}
    masked = bert_like().make_inputs(dims={"batch": 2, "sequence": 8})
    assert (masked["attention_mask"] == 1).all() and masked["input_ids"].max() < 50
