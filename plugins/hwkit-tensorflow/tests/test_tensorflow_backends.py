"""The tensorflow and litert backends beyond the kit: layouts, the conversion cache, XLA,
XNNPACK, threads, and the errors users see (rows 106-110 of docs/errors.md)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

import hwkit
from hwkit.cli import main
from hwkit.plugins import Registry
from hwkit.testing.conformance import reference_outputs

from hwkit_tensorflow import cache, convert, failures
from tensorflow_graphs import (
    agrees_with_onnxruntime,
    castlike_graph,
    layouts_graph,
    offset_graph,
    skip_without_conversion_stack,
)

skip_without_conversion_stack()


@pytest.mark.parametrize("backend", ["tensorflow", "litert"])
def test_every_output_in_the_onnx_layout_agrees_with_onnxruntime(backend: str) -> None:
    meta = agrees_with_onnxruntime(layouts_graph(), backend, seed=3)
    assert all(entry["kept_by_option"] for entry in meta["inputs"])  # 3-D and 4-D: onnx2tf told to keep them
    perms = {entry["name"]: entry["permutation"] for entry in meta["outputs"]}
    # 1x8x8x8: every dim equal, so only onnx2tf's own record can say the conv output is NHWC.
    assert perms["image_out"] == [0, 3, 1, 2]
    assert perms["reduced"] == [0, 2, 1] and perms["signal_out"] == [0, 2, 1]


def test_xla_compiles_the_function_with_xla() -> None:
    model = hwkit.Model.load(layouts_graph())
    inputs = model.make_inputs(seed=4)
    with hwkit.compile(model, "tensorflow", xla=True) as exe:
        got = exe.run(inputs)
        hlo = exe._function.experimental_get_compiler_ir(*[inputs[s.name] for s in model.inputs])(stage="hlo")
    assert "HloModule" in hlo  # what XLA compiled: the function really goes through XLA
    expected = reference_outputs(model, inputs)
    for spec in model.outputs:
        np.testing.assert_allclose(got[spec.name], expected[spec.name], rtol=1e-4, atol=1e-4, err_msg=spec.name)


def test_xnnpack_delegate_is_applied_and_can_be_turned_off() -> None:
    model = hwkit.Model.load(layouts_graph())
    inputs = model.make_inputs(seed=5)
    with hwkit.compile(model, "litert") as on, hwkit.compile(model, "litert", xnnpack=False) as off:
        assert on.delegated and not off.delegated
        a, b = on.run(inputs), off.run(inputs)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-4)


def test_second_compile_reuses_the_cached_conversion() -> None:
    model = hwkit.Model.load(offset_graph(float(uuid.uuid4().int % 1000) + 0.5))  # converted by no one else
    with hwkit.compile(model, "litert") as first:  # converts, and makes float32.tflite in the same child
        folder = first.conversion.folder
        assert not first.conversion.reused and (folder / "float32.tflite").is_file()
        stamps = {p.name: p.stat().st_mtime_ns for p in (folder / "meta.json", folder / "float32.tflite")}
    with hwkit.compile(model, "tensorflow") as second, hwkit.compile(model, "litert") as again:
        assert second.conversion.reused and second.conversion.folder == folder  # no Erf: one conversion for both
        assert again.conversion.reused and again.conversion.folder == folder
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "meta.json", folder / "float32.tflite")} == stamps
    assert not list(folder.glob(".building-*"))


def test_a_conversion_published_second_keeps_the_first(tmp_path: Path) -> None:
    """Two processes converting the same model: the first rename wins, the other copy is dropped,
    and the entry is whole at every moment (it appears by one rename)."""
    entry = tmp_path / "key"
    first, second = cache.scratch_folder(tmp_path), cache.scratch_folder(tmp_path)
    (first / "meta.json").write_text("first")
    (second / "meta.json").write_text("second")
    cache.publish_folder(first, entry)
    cache.publish_folder(second, entry)
    assert (entry / "meta.json").read_text() == "first"
    assert not first.exists() and not second.exists()


def test_row_106_ops_onnx2tf_cannot_convert_are_listed_before_converting(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "castlike.onnx"
    hwkit.Model.load(castlike_graph()).save(path)
    assert main(["run", str(path), "-b", "tensorflow"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CastLike" in err and "first" in err and "second" in err, err


def test_row_107_an_onnx2tf_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    model = hwkit.Model.load(castlike_graph())
    monkeypatch.setattr(convert, "_has_converter", lambda op: True)  # let onnx2tf itself trip on CastLike
    with pytest.raises(hwkit.UnsupportedOpError) as caught:
        hwkit.compile(model, "tensorflow")
    assert caught.value.ops == {"CastLike": ["first", "second"]}
    # Any other failure: onnx2tf's first ERROR line (colours stripped) and the fix, one line.
    output = ("\x1b[32mINFO:\x1b[0m model loaded\n\x1b[31mERROR:\x1b[0m The trace log is below.\n"
              "Traceback (most recent call last):\n  ...\nValueError: Dimensions must be equal\n"
              f"{failures.FAILURE}SystemExit: 1\n")
    error = failures.conversion_failed(model, "tensorflow", "onnx2tf", 1, output)
    assert isinstance(error, hwkit.CompileError) and "\n" not in str(error)
    assert str(error) == (f"onnx2tf could not convert '{model.name}': The trace log is below. SystemExit: 1; use "
                          "onnxruntime or openvino for this model (hwkit bench -b onnxruntime,openvino)")


def test_row_108_ops_litert_has_no_builtin_kernel_for() -> None:
    model = hwkit.Model.load(castlike_graph())
    text = (f"{failures.FAILURE}ConverterError: Could not translate MLIR to FlatBuffer. error: 'tf.Erf' op is "
            "neither a custom op nor a flex op\nTF Select ops: Erf, Sinh\n")
    error = failures.conversion_failed(model, "litert", "tflite", 3, text)
    assert str(error) == (f"LiteRT has no builtin kernels for Erf, Sinh that onnx2tf made of '{model.name}'; "
                          "run it with -b tensorflow instead")


def test_row_109_a_second_thread_count_is_refused(capsys: pytest.CaptureFixture[str],
                                                  tensorflow_threads: int) -> None:
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # TensorFlow's pools now run (with the tests' count)
    assert main(["run", "mlp", "-b", "tensorflow", "-o", f"threads={tensorflow_threads + 2}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hwkit: error: tensorflow cannot use threads={tensorflow_threads + 2}: its thread pools "
                          "already run with 1 thread in this process"), err
    with hwkit.compile("mlp", "tensorflow", threads=tensorflow_threads) as exe:  # the same count is fine
        assert exe.options.threads == tensorflow_threads


@pytest.mark.parametrize("missing", ["tensorflow", "onnx2tf"])
def test_row_110_unavailable_with_the_reason_and_the_hint(missing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed: find_spec answers None
    fresh = Registry()
    fresh.discover()
    for name in ("tensorflow", "litert"):
        info = fresh.backends[name]
        assert info.status == "unavailable", (name, info.status, info.reason)
        assert info.reason.startswith(f"{missing} is not installed") and info.reason.endswith("(hwkit install tensorflow)")
    if missing == "onnx2tf":
        assert "with --no-deps" in fresh.backends["tensorflow"].reason
