"""A MODEL, an --inputs file or an external data file that is not a regular file (a device, a
FIFO, a socket, a folder, a link to one) is refused at once, before anything opens it: row 29
of docs/errors.md. /dev/zero would otherwise be read forever, and a FIFO blocks open()."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

import hwkit
from hwkit import ModelError
from hwkit.cli import main
from hwkit.model.npz import load_inputs
from tests.helpers import add_relu_model
from tests.model.test_external_data import external_model

pytestmark = pytest.mark.timeout(20)  # a regression would block on open(); fail instead of hanging

KINDS = {
    "fifo": "a FIFO (named pipe)",
    "dev-zero": "a character device",
    "dev-null": "a character device",
    "socket": "a socket",
    "link-to-dev-zero": "a character device",
    "folder": "a folder",
}


@pytest.fixture(params=sorted(KINDS))
def not_a_file(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A path that exists but is no regular file, and the words hwkit must use for it."""
    kind = request.param
    path = tmp_path / "model.onnx"
    server = None
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        path = tmp_path / "s.onnx"  # AF_UNIX paths are limited to about 100 characters
        server = socket.socket(socket.AF_UNIX)
        try:
            server.bind(str(path))
        except OSError as e:  # a tmp_path too long for a socket address
            server.close()
            pytest.skip(f"cannot bind a unix socket here: {e}")
    elif kind == "folder":
        path.mkdir()
    elif kind == "link-to-dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path = Path("/dev/zero" if kind == "dev-zero" else "/dev/null")
    yield path, KINDS[kind]
    if server is not None:
        server.close()


def test_row_29_model_that_is_not_a_regular_file(not_a_file: tuple[Path, str], capsys: pytest.CaptureFixture[str]):
    path, kind = not_a_file
    with pytest.raises(ModelError, match=re.escape(f"is {kind}")):
        hwkit.Model.load(path)
    for command in (["run", str(path)], ["bench", str(path), "-b", "onnxruntime"]):
        assert main(command) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and err[0].startswith("hwkit: error: "), err
        assert str(path) in err[0] and ("folder" in err[0] or kind in err[0] and "pass an .onnx file" in err[0])
    if path.is_symlink():
        assert "(a link to /dev/zero)" in str(pytest.raises(ModelError, hwkit.Model.load, path).value)


def test_inputs_file_that_is_not_a_regular_file(not_a_file: tuple[Path, str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]):
    path, kind = not_a_file
    with pytest.raises(ModelError, match="not a file; save inputs to a file with numpy.savez"):
        load_inputs(path)
    relu = tmp_path / "relu.onnx"
    onnx.save(add_relu_model(dynamic=True), relu)
    assert main(["run", str(relu), "--inputs", str(path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and kind in err[0] and "numpy.savez" in err[0], err


def test_check_with_inputs_from_a_fifo_is_refused(tmp_path: Path, fake_registry):
    fifo = tmp_path / "inputs.npz"
    os.mkfifo(fifo)
    with pytest.raises(ModelError, match=r"is a FIFO \(named pipe\), not a file"):
        hwkit.check(add_relu_model(), ["fake", "fake"], inputs=str(fifo))


def test_a_regular_file_and_a_link_to_one_still_load(tmp_path: Path):
    path = tmp_path / "relu.onnx"
    onnx.save(add_relu_model(), path)
    link = tmp_path / "link.onnx"
    link.symlink_to(path)
    assert hwkit.Model.load(link).inputs == hwkit.Model.load(path).inputs
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.ones((2, 4), np.float32))
    assert load_inputs(inputs)["x"].shape == (2, 4)


@pytest.mark.parametrize("kind", ["fifo", "link-to-dev-zero", "socket"])
def test_external_data_that_is_not_a_regular_file(kind: str, tmp_path: Path):
    """Data files must be regular files inside the model's folder (external.vet_external_data)."""
    folder = tmp_path / "m"
    folder.mkdir()
    data = folder / "w.bin"
    server = None
    if kind == "fifo":
        os.mkfifo(data)
    elif kind == "socket":
        data = folder / "w"
        server = socket.socket(socket.AF_UNIX)
        try:
            server.bind(str(data))
        except OSError as e:
            server.close()
            pytest.skip(f"cannot bind a unix socket here: {e}")
    else:
        data.symlink_to("/dev/zero")
    path = folder / "model.onnx"
    onnx.save(external_model(data.name), path)
    try:
        with pytest.raises(ModelError, match="not a regular file|outside the model's folder"):
            hwkit.Model.load(path)
    finally:
        if server is not None:
            server.close()
