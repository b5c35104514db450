"""Models with external data: path traversal refused before any read (row 19 of
docs/errors.md), and a model over 2 GB that loads, fingerprints and compiles (row 20)."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import hwkit
from hwkit import Model, ModelError


def external_model(location: str, length: int = 16, elements: int = 4) -> onnx.ModelProto:
    """y = x + w, with w (float32[elements]) stored in ``location`` at offset 0."""
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[elements])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add")], "ext",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [elements])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [elements])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


WEIGHTS = np.array([1.0, 2.0, 3.0, 4.0], np.float32)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True)
    return folder


def test_external_data_in_the_folder_loads_runs_and_is_fingerprinted(model_dir: Path) -> None:
    (model_dir / "w.bin").write_bytes(WEIGHTS.tobytes())
    path = model_dir / "m.onnx"
    onnx.save(external_model("w.bin"), path)
    model = Model.load(path)
    assert model.external_files == [(model_dir / "w.bin").resolve()]
    with hwkit.compile(model, "onnxruntime", threads=1) as exe:
        y = exe.run({"x": np.ones(4, np.float32)})["y"]
    np.testing.assert_array_equal(y, WEIGHTS + 1)
    before = model.sha256
    (model_dir / "w.bin").write_bytes((WEIGHTS * 2).tobytes())
    assert Model.load(path).sha256 != before  # the weights are part of the fingerprint


@pytest.mark.parametrize("location", ["../../../../../../etc/passwd", "/etc/passwd", "../secret.bin",
                                      "sub/../../secret.bin", "link.bin"])
def test_row_19_external_data_outside_the_folder_is_refused_before_reading(
    model_dir: Path, location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = model_dir.parent / "secret.bin"
    secret.write_bytes(WEIGHTS.tobytes())
    (model_dir / "link.bin").symlink_to(secret)  # a symlink inside that leads outside
    path = model_dir / "m.onnx"
    onnx.save(external_model(location), path)
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(os.path.realpath(file) if isinstance(file, (str, os.PathLike)) else str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    with pytest.raises(ModelError, match="refused for safety") as info:
        Model.load(path)
    message = str(info.value)
    assert "\n" not in message and "keep external data files in the model's folder" in message
    assert str(secret) not in opened and "/etc/passwd" not in opened, opened


def test_external_data_file_missing_or_short(model_dir: Path) -> None:
    path = model_dir / "m.onnx"
    onnx.save(external_model("w.bin"), path)
    with pytest.raises(ModelError, match="needs external data file 'w.bin'.*copy it next to m.onnx"):
        Model.load(path)
    (model_dir / "w.bin").write_bytes(WEIGHTS.tobytes()[:8])
    with pytest.raises(ModelError, match="reads beyond the end of 'w.bin'"):
        Model.load(path)


def test_external_data_in_bytes_has_no_folder_to_come_from() -> None:
    with pytest.raises(ModelError, match="load the model from its .onnx path"):
        Model.load(external_model("w.bin").SerializeToString())
    with pytest.raises(ModelError, match="load the model from its .onnx path"):
        Model.load(external_model("/etc/passwd"))


# -- row 20: over 2 GB ------------------------------------------------------------------------

BIG_ELEMENTS = 525_000_000  # float32: 2.1 GB, past protobuf's 2 GB message limit
CHUNK = 5_000_000  # a multiple of 1000, so big[i] == i % 1000 across chunks

BIG_CHILD = """
import json, resource, sys, time
import numpy as np
import hwkit
t0 = time.perf_counter()
model = hwkit.Model.load(sys.argv[1])
load_s = time.perf_counter() - t0
sha = model.sha256
try:
    model.serialized
    serialized = "no error"
except hwkit.ModelError as e:
    serialized = str(e)
x = {"x": np.zeros(4, np.float32)}
ys = {}
for backend in ("onnxruntime", "openvino"):
    with hwkit.compile(model, backend, threads=1) as exe:
        ys[backend] = exe.run(x)["y"].tolist()
print(json.dumps({"load_s": load_s, "sha": sha, "serialized": serialized, "ys": ys,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_big_model(folder: Path) -> Path:
    """y = x + Gather(big, [0, 1, N-2, N-1]) with a 2.1 GB ``big`` in external data."""
    chunk = (np.arange(CHUNK, dtype=np.int64) % 1000).astype(np.float32)
    with open(folder / "big.bin", "wb") as handle:
        for _ in range(BIG_ELEMENTS // CHUNK):
            chunk.tofile(handle)
    model = external_model("big.bin", length=BIG_ELEMENTS * 4, elements=4)
    big = model.graph.initializer[0]
    big.name, big.dims[:] = "big", [BIG_ELEMENTS]
    idx = helper.make_tensor("idx", TensorProto.INT64, [4], [0, 1, BIG_ELEMENTS - 2, BIG_ELEMENTS - 1])
    model.graph.initializer.append(idx)
    del model.graph.node[:]
    model.graph.node.extend([helper.make_node("Gather", ["big", "idx"], ["g"], axis=0, name="gather"),
                             helper.make_node("Add", ["x", "g"], ["y"], name="add")])
    path = folder / "big.onnx"
    path.write_bytes(model.SerializeToString())  # the .onnx file itself is tiny
    return path


@pytest.mark.slow
def test_row_20_model_over_2gb_with_external_data(tmp_path: Path) -> None:
    path = write_big_model(tmp_path)
    try:
        child = subprocess.run([sys.executable, "-c", textwrap.dedent(BIG_CHILD), str(path)],
                               capture_output=True, text=True, timeout=300)
        assert child.returncode == 0, child.stderr[-3000:]
        result = json.loads(child.stdout.strip().splitlines()[-1])
        expected = [0.0, 1.0, float((BIG_ELEMENTS - 2) % 1000), float((BIG_ELEMENTS - 1) % 1000)]
        assert result["ys"] == {"onnxruntime": expected, "openvino": expected}
        assert result["load_s"] < 10, result  # nothing of the 2.1 GB is read to load
        assert "compile it from its .onnx path" in result["serialized"]
        digest = hashlib.sha256()
        for file in (path, tmp_path / "big.bin"):
            digest.update(file.name.encode() + b"\0")
            with open(file, "rb") as handle:
                while block := handle.read(1 << 24):
                    digest.update(block)
        assert result["sha"] == digest.hexdigest()
        assert result["peak_mb"] < 6 * 1024, result  # the weights are not held twice
    finally:
        for name in ("big.bin", "big.onnx"):
            (tmp_path / name).unlink(missing_ok=True)
