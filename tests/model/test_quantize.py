"""hwkit.model.quantize: one static QDQ int8 graph with per-channel weights, calibrated on seeded
inputs or the user's .npz file, cached by content and settings; bad calibration files and
graphs with nothing to quantise say what is wrong (rows 68-73 of docs/errors.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwkit.errors import ModelError, OptionError
from hwkit.model import Model
from hwkit.model.external import has_external

pytest.importorskip("onnxruntime.quantization", reason="the int8 quantiser is onnxruntime's")

from hwkit.model import quantize  # noqa: E402  # after the skip: imports only numpy/onnx itself
from hwkit.model.quantize import Quantized, quantize_int8  # noqa: E402


def tiny(nothing_to_quantise: bool = False, external: Path | None = None) -> Model:
    """x: float32[batch,2,8,8] -> Conv(4 channels, 3x3) -> Relu -> Flatten -> Gemm -> y[batch,5]
    (or x -> Relu -> y, with nothing to quantise)."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 8, 8])
    if nothing_to_quantise:
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, 8, 8])])
    else:
        weights = [numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w"),
                   numpy_helper.from_array(rng.standard_normal((144, 5)).astype(np.float32) / 12, "v")]
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]), helper.make_node("Gemm", ["f", "v"], ["y"])],
            "tiny", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5])], weights)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    if external is None:
        return Model(proto, name="tiny", default_dims={"batch": 1})
    onnx.save(proto, str(external), save_as_external_data=True, all_tensors_to_one_file=True,
              location="tiny.data", size_threshold=0)
    model = Model.load(external)
    model.default_dims = {"batch": 1}
    return model


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(root))
    return root


@pytest.fixture
def count_quantising(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the quantiser itself ran (the cache's hits do not count)."""
    calls: list[int] = []
    real = quantize._quantize

    def counted(model: Model, sets: list[dict[str, np.ndarray]], kept: list[str]) -> bytes:
        calls.append(len(sets))
        return real(model, sets, kept)

    monkeypatch.setattr(quantize, "_quantize", counted)
    return calls


def _run(model: Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, inputs)[0])


def test_the_graph_is_qdq_with_per_channel_weights_and_keeps_the_signature() -> None:
    model = tiny()
    done = quantize_int8(model, samples=4)
    assert isinstance(done, Quantized)
    q = done.model
    assert (q.name, q.default_dims, q.inputs, q.outputs) == (model.name, model.default_dims, model.inputs, model.outputs)
    ops = [n.op_type for n in q.proto.graph.node]
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= set(ops)
    initializers = {t.name: numpy_helper.to_array(t) for t in q.proto.graph.initializer}
    conv_weight = next(n for n in q.proto.graph.node if n.op_type == "Conv").input[1]
    dequantize = next(n for n in q.proto.graph.node if n.output[0] == conv_weight)
    assert dequantize.op_type == "DequantizeLinear"
    assert initializers[dequantize.input[0]].dtype == np.int8 and initializers[dequantize.input[1]].shape == (4,)
    settings = done.settings
    assert settings["per_channel"] is True and settings["format"] == "QDQ"
    assert settings["quantised_nodes"] == {"Conv": 1, "Gemm": 1}
    assert settings["calibration"]["source"] == "seeded" and settings["calibration"]["samples"] == 4
    inputs = model.make_inputs(seed=0)
    a, b = _run(model, inputs).ravel(), _run(q, inputs).ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.99  # int8 is close, not equal
    assert not np.array_equal(a, b)


def test_the_second_call_reads_the_cache_and_each_setting_is_part_of_the_key(count_quantising, tmp_path) -> None:
    model = tiny()
    first = quantize_int8(model, samples=3)
    again = quantize_int8(tiny(), samples=3)  # a new Model object of the same content
    assert count_quantising == [3]
    assert again.settings == first.settings and again.model.sha256 == first.model.sha256
    quantize_int8(model, samples=3, seed=1)
    quantize_int8(model, samples=2)
    quantize_int8(model, samples=3, dims={"batch": 2})
    assert count_quantising == [3, 3, 2, 3]
    path = tmp_path / "calibration.npz"
    np.savez(path, x=np.ones((2, 1, 2, 8, 8), np.float32))
    quantize_int8(model, calibration=path)
    quantize_int8(model, calibration=path)
    np.savez(path, x=np.full((2, 1, 2, 8, 8), 2, np.float32))  # same name, other content
    done = quantize_int8(model, calibration=path)
    assert count_quantising == [3, 3, 2, 3, 2, 2]
    assert done.settings["calibration"]["samples"] == "all" and len(done.settings["calibration"]["sha256"]) == 64


def test_calibration_seeds_are_not_the_seeds_bench_and_check_draw(count_quantising, monkeypatch) -> None:
    drawn: list[int] = []
    real = Model.make_inputs

    def spy(self, shapes=None, dims=None, seed=0):
        drawn.append(seed)
        return real(self, shapes, dims, seed)

    monkeypatch.setattr(Model, "make_inputs", spy)
    quantize_int8(tiny(), seed=5, samples=3)
    assert len(drawn) == 3 and min(drawn) > 5 + 100_000


def test_a_calibration_file_may_hold_one_sample_without_the_sample_axis(count_quantising, tmp_path) -> None:
    path = tmp_path / "one.npz"
    np.savez(path, x=np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32))
    done = quantize_int8(tiny(), calibration=path)
    assert count_quantising == [1] and done.settings["calibration"]["file"] == str(path)


@pytest.mark.parametrize("inlined", [True, False], ids=["weights read in", "weights left in their file"])
def test_a_model_with_external_data_is_quantised(tmp_path, monkeypatch, inlined) -> None:
    if not inlined:  # as a model over INLINE_EXTERNAL_LIMIT: the quantiser reads the files itself
        monkeypatch.setattr("hwkit.model.model.INLINE_EXTERNAL_LIMIT", 0)
    model = tiny(external=tmp_path / "tiny.onnx")
    assert model.external_files and has_external(model.proto) is not inlined
    done = quantize_int8(model, samples=2)
    assert "QuantizeLinear" in {n.op_type for n in done.model.proto.graph.node}
    assert not done.model.external_files  # the cache holds one self-contained file


def test_the_layer_nearest_each_output_stays_fp32_when_others_are_quantised() -> None:
    proto = tiny().proto
    for i, node in enumerate(proto.graph.node):
        node.name = ["conv", "relu", "flatten", "head"][i]
    done = quantize_int8(Model(proto, name="named", default_dims={"batch": 1}), samples=2)
    assert done.settings["kept_fp32"] == ["head"] and done.settings["quantised_nodes"] == {"Conv": 1}
    head = next(n for n in done.model.proto.graph.node if n.op_type == "Gemm")
    producers = {out: n.op_type for n in done.model.proto.graph.node for out in n.output}
    assert producers.get(head.input[0]) != "DequantizeLinear" and head.input[1] == "v"  # fp32 in, fp32 weight
    only = _two_inputs()  # one MatMul, nearest the output: quantised all the same, or nothing would be
    only.proto.graph.node[0].name = "mm"
    assert quantize_int8(only, samples=2).settings["kept_fp32"] == []


def test_a_graph_older_than_opset_13_is_converted_for_its_per_channel_weights() -> None:
    proto = tiny().proto
    proto.opset_import[0].version = 11  # DequantizeLinear has no axis there: ORT's output would be invalid
    done = quantize_int8(Model(proto, name="old", default_dims={"batch": 1}), samples=2)
    assert done.model.opset == 13 and done.settings["opset_converted"] == "11 -> 13"
    assert _run(done.model, done.model.make_inputs(seed=0)).shape == (1, 5)


def test_row_68_a_graph_with_nothing_to_quantise_says_so(count_quantising) -> None:
    with pytest.raises(ModelError, match=r"model 'tiny' has nothing to quantise to int8: no Conv, .*MatMul"):
        quantize_int8(tiny(nothing_to_quantise=True))
    assert count_quantising == []


@pytest.mark.parametrize("arrays, message", [
    ({"image": np.ones((2, 1, 2, 8, 8), np.float32)}, r"missing 'x', unknown 'image'"),
    ({"x": np.ones((2, 1, 2, 8, 8), np.float32), "extra": np.ones(3)}, r"unknown 'extra'"),
], ids=["wrong name", "an extra array"])
def test_row_69_calibration_arrays_named_unlike_the_inputs_name_what_the_model_expects(tmp_path, arrays, message):
    path = tmp_path / "calibration.npz"
    np.savez(path, **arrays)
    with pytest.raises(ModelError, match=rf"calibration file .*: {message}; the model expects x: float32\[batch,2,8,8\]"):
        quantize_int8(tiny(), calibration=path)


@pytest.mark.parametrize("array, message", [
    (np.ones((2, 8, 8), np.float32), r"'x' has shape \[2, 8, 8\], neither rank 4 \(one sample\) nor 5"),
    (np.ones((3, 1, 2, 7, 8), np.float32), r"sample 0: .*x"),
    (np.ones((3, 1, 2, 8, 8), np.float64), r"sample 0: .*float32"),
], ids=["rank", "shape", "dtype"])
def test_row_70_calibration_arrays_of_the_wrong_shape_or_dtype_name_what_the_model_expects(tmp_path, array, message):
    path = tmp_path / "calibration.npz"
    np.savez(path, x=array)
    with pytest.raises(ModelError, match=rf"{message}.*the model expects x: float32\[batch,2,8,8\]"):
        quantize_int8(tiny(), calibration=path)


def _two_inputs() -> Model:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])], "mm",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 4]) for n in "ab"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return Model(proto, name="mm")


def test_row_71_calibration_sample_counts_that_disagree_or_fall_short_are_refused(tmp_path) -> None:
    path = tmp_path / "calibration.npz"
    np.savez(path, a=np.ones((3, 4, 4), np.float32), b=np.ones((2, 4, 4), np.float32))
    with pytest.raises(ModelError, match=r"different numbers of samples \('a' 3, 'b' 2\)"):
        quantize_int8(_two_inputs(), calibration=path)
    np.savez(path, a=np.ones((2, 4, 4), np.float32), b=np.ones((2, 4, 4), np.float32))
    with pytest.raises(ModelError, match=r"holds 2 samples, fewer than the 5 asked for"):
        quantize_int8(_two_inputs(), calibration=path, samples=5)
    np.savez(path, a=np.ones((0, 4, 4), np.float32), b=np.ones((0, 4, 4), np.float32))
    with pytest.raises(ModelError, match=r"holds no samples"):
        quantize_int8(_two_inputs(), calibration=path)
    with pytest.raises(OptionError, match=r"calibration samples must be a whole number >= 1, got 0"):
        quantize_int8(_two_inputs(), samples=0)


def test_row_72_without_onnxruntime_int8_names_the_install(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(OptionError, match=r"int8 needs hwkit's quantiser, which is ONNX Runtime's: pip install onnxruntime"):
        quantize_int8(tiny())


def test_row_73_a_calibration_file_that_is_missing_or_not_a_file_is_refused(tmp_path) -> None:
    with pytest.raises(ModelError, match=r"calibration file not found: .*missing.npz; save calibration inputs"):
        quantize_int8(tiny(), calibration=tmp_path / "missing.npz")
    with pytest.raises(ModelError, match=r"not a file; save calibration inputs"):
        quantize_int8(tiny(), calibration=tmp_path)
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ModelError, match=r"is not a readable .npz file"):
        quantize_int8(tiny(), calibration=tmp_path / "text.npz")


def test_a_failing_quantiser_is_a_model_error_that_names_it(monkeypatch) -> None:
    import onnxruntime.quantization as ortq

    def broken(*args, **kwargs):
        print("calibrating tensor c")  # what the quantiser said goes into the error, not the terminal
        raise RuntimeError("no kernel for this\nsecond line")

    monkeypatch.setattr(ortq, "quantize_static", broken)
    with pytest.raises(ModelError, match=r"onnxruntime could not quantise 'tiny' to int8 \(RuntimeError: no kernel "
                                         r"for this; it said: calibrating tensor c\)"):
        quantize_int8(tiny(), samples=1)


def test_the_quantiser_loads_only_when_int8_is_asked_for() -> None:
    import subprocess
    import sys

    code = ("import sys, hwkit, hwkit.model.quantize; "
            "print(any(m.startswith('onnxruntime') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
