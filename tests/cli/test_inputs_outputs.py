"""Hardening, third round, at the edges of a run: option values no run can use (NaN, infinities,
negatives), an .npz whose headers declare more than it holds, an opset newer than the installed
onnx knows, and output paths that are the run's own inputs or symlinks. Each is one line and
exit code 2 before anything is allocated or run (docs/errors.md rows 50, 52, 53, 54)."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
from numpy.lib import format as npy_format

import hwkit
from hwkit.cli import main
from hwkit.errors import InputMemoryError, ModelError, OptionError, OutputError
from hwkit.model.npz import load_inputs
from hwkit.runner.validate import check_number
from tests.helpers import add_relu_model, cli

FAST = ["--min-time", "0.01", "--min-iters", "3", "--warmup", "0", "--warmup-time", "0", "--target-ci", "0",
        "--no-isolation", "--dim", "batch=2"]




@pytest.fixture
def relu(tmp_path: Path) -> Path:
    path = tmp_path / "relu.onnx"
    onnx.save(add_relu_model(dynamic=True), path)
    return path


# -- row 52: option values ----------------------------------------------------------------------

BAD_FLAGS = [("--seed", "-1"), ("--timeout", "nan"), ("--threads", "-1"), ("--threads", "0"), ("--min-time", "inf"),
             ("--input-sets", "0"), ("--max-time", "-1"), ("--target-ci", "nan"), ("--warmup", "-5"),
             ("--warmup-time", "-inf"), ("--min-iters", "0"), ("--timeout", "1e999")]


@pytest.mark.parametrize("flag, value", BAD_FLAGS)
def test_row_52_a_value_no_run_can_use_is_one_line_before_anything_runs(capsys, fake_registry, relu, tmp_path,
                                                                         monkeypatch, flag, value):
    def never(*_: object, **__: object) -> None:
        raise AssertionError("nothing may be loaded or run for a bad option value")

    monkeypatch.setattr("hwkit.cli.bench_cmd.bench", never)
    monkeypatch.setattr("hwkit.cli.bench_cmd.open_model", never)
    out_json = tmp_path / "r.json"
    code, out, err = cli(capsys, "bench", str(relu), "-b", "fake", f"{flag}={value}", "--json", str(out_json))
    assert code == 2 and out == "" and not out_json.exists()
    assert len(err) == 1 and err[0].startswith(f"hwkit: error: argument {flag}: must be a ") and f"'{value}'" in err[0]


@pytest.mark.parametrize("command", ["run", "check"])
def test_row_52_the_seed_and_threads_of_every_command(capsys, fake_registry, relu, command):
    for flag in (["--seed", "-1"], ["--threads", "-2"]) if command == "check" else (["--seed", "-1"],):
        code, out, err = cli(capsys, command, str(relu), "-b", "fake", *flag)
        assert code == 2 and out == "" and len(err) == 1 and f"argument {flag[0]}: must be a whole number" in err[0]


@pytest.mark.parametrize("field, value", [
    ("seed", -1), ("timeout", float("nan")), ("threads", -1), ("threads", 0), ("min_time", float("inf")),
    ("input_sets", 0), ("max_time", -1.0), ("target_ci", float("nan")), ("warmup_iters", -5), ("min_iters", 1.5),
    ("warmup_time", float("-inf")), ("seed", True), ("timeout", "600"),
])
def test_row_52_bench_settings_refuse_the_same_values(field, value):
    with pytest.raises(OptionError, match=f"^{field} must be a (whole|finite) number >= "):
        hwkit.BenchSettings(**{field: value})


def test_row_52_check_settings_share_the_validator():
    with pytest.raises(OptionError, match="timeout must be a finite number >= 0 seconds; got nan"):
        hwkit.CheckSettings(timeout=float("nan"))
    for value in (1, 0.5, 0):  # the minimum itself is allowed
        check_number("x", value, 0)
    with pytest.raises(OptionError, match="x must be a whole number >= 1; got 0.5"):
        check_number("x", 0.5, 1, whole=True)


# -- row 53: an .npz whose headers declare more than it holds --------------------------------------

def _npz_declaring(path: Path, shape: tuple[int, ...], data: bytes, compress: bool = False) -> Path:
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("x.npy", header.getvalue() + data)
    return path


@pytest.mark.parametrize("shape, compress", [((10**12,), False), ((10**12,), True), ((10**6, 10**6), False),
                                             ((1000,), False)])
def test_row_53_an_npz_declaring_more_than_it_holds_is_refused_before_allocating(tmp_path, shape, compress):
    bomb = _npz_declaring(tmp_path / "bomb.npz", shape, b"\0" * 16, compress)
    with pytest.raises(ModelError, match=r"^.*bomb.npz: array 'x' declares shape .* but holds 16 bytes; the file is "
                                         r"damaged or crafted: save it again with numpy.savez$"):
        load_inputs(bomb)


def test_row_53_an_npz_larger_than_the_memory_is_refused(tmp_path, monkeypatch):
    arrays = tmp_path / "big.npz"
    np.savez(arrays, x=np.zeros((2, 4), np.float32))
    monkeypatch.setattr("psutil.virtual_memory", lambda: type("M", (), {"available": 16})())
    with pytest.raises(InputMemoryError, match="more than the 0.0 GiB of memory available; pass smaller inputs"):
        load_inputs(arrays)


def test_row_53_through_hwkit_run(capsys, fake_registry, relu, tmp_path):
    bomb = _npz_declaring(tmp_path / "bomb.npz", (10**12,), b"\0" * 16)
    code, out, err = cli(capsys, "run", str(relu), "-b", "fake", "--inputs", str(bomb))
    assert code == 2 and out == "" and len(err) == 1 and "declares shape (1000000000000,)" in err[0]
    good = tmp_path / "good.npz"
    np.savez(good, x=np.ones((2, 4), np.float32))
    assert load_inputs(good)["x"].shape == (2, 4)  # an honest file still loads


def test_dev_zero_as_a_model_or_inputs_is_still_refused(capsys, fake_registry, relu):
    for args in (["run", "/dev/zero"], ["run", str(relu), "-b", "fake", "--inputs", "/dev/zero"]):
        code, out, err = cli(capsys, *args)
        assert code == 2 and len(err) == 1 and "a character device" in err[0], err


# -- row 50: an opset newer than the installed onnx knows ------------------------------------------

@pytest.mark.parametrize("domain", ["", "ai.onnx", "ai.onnx.ml"])
def test_row_50_a_future_opset_is_refused_with_the_fix(capsys, tmp_path, domain):
    proto = add_relu_model(dynamic=True)
    if domain == "ai.onnx.ml":
        proto.opset_import.append(onnx.helper.make_opsetid("ai.onnx.ml", 99))
    else:
        proto.opset_import[0].domain, proto.opset_import[0].version = domain, 99
    known = onnx.defs.C.schema_version_map()["ai.onnx.ml" if domain == "ai.onnx.ml" else ""][1]
    expected = (f"uses opset 99 of {domain or 'ai.onnx'}, newer than the installed onnx {onnx.__version__} knows (up "
                f"to {known}); upgrade onnx (pip install -U onnx) or re-export the model at opset {known} or lower")
    with pytest.raises(ModelError, match=expected.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        hwkit.Model.load(proto)
    path = tmp_path / "future.onnx"
    onnx.save(proto, path)
    code, out, err = cli(capsys, "bench", str(path))
    assert code == 2 and out == "" and err == [f"hwkit: error: {path} {expected}"]


def test_row_50_the_newest_known_opset_still_loads():
    assert hwkit.Model.load(add_relu_model(opset=onnx.defs.onnx_opset_version())).opset == onnx.defs.onnx_opset_version()


# -- row 54: output paths ------------------------------------------------------------------------

def test_row_54_an_output_that_is_the_model_is_refused_before_measuring(capsys, fake_registry, relu, tmp_path):
    before = relu.read_bytes()
    link = tmp_path / "link.onnx"
    link.symlink_to(relu)
    hard = tmp_path / "hard.onnx"
    hard.hardlink_to(relu)
    for output in (relu, link, hard, tmp_path / "." / "relu.onnx"):
        for flag in ("--json", "--csv", "--markdown"):
            code, out, err = cli(capsys, "bench", str(relu), "-b", "fake", *FAST, flag, str(output))
            assert code == 2 and out == "", err
            assert err == [f"hwkit: error: cannot write {output}: it is an input of this run ({relu}) and would be "
                           "overwritten; choose another output path"]
    assert relu.read_bytes() == before


def test_row_54_external_data_and_inputs_files_are_inputs_too(capsys, fake_registry, tmp_path):
    proto = add_relu_model(dynamic=True)
    proto.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(  # raw data: only that goes external
        onnx.numpy_helper.to_array(proto.graph.initializer[0]), "b"))
    model = tmp_path / "ext.onnx"
    onnx.save_model(proto, model, save_as_external_data=True, all_tensors_to_one_file=True, location="ext.data",
                    size_threshold=0)
    data = tmp_path / "ext.data"
    before = data.read_bytes()
    code, _, err = cli(capsys, "bench", str(model), "-b", "fake", *FAST, "--json", str(data))
    assert code == 2 and len(err) == 1 and "it is an input of this run" in err[0] and data.read_bytes() == before
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.ones((2, 4), np.float32))
    code, _, err = cli(capsys, "run", str(model), "-b", "fake", "--inputs", str(inputs), "--save", str(inputs))
    assert code == 2 and len(err) == 1 and f"it is an input of this run ({inputs})" in err[0]
    assert load_inputs(inputs)["x"].shape == (2, 4)


def test_row_54_a_symlinked_output_is_written_through(capsys, fake_registry, relu, tmp_path):
    """Decided (docs/results.md): a symlink given as an output keeps pointing where it did; the
    file it points to is replaced atomically."""
    real = tmp_path / "results" / "r.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    dangling = tmp_path / "new.csv"
    dangling.symlink_to(tmp_path / "results" / "new.csv")
    code, _, err = cli(capsys, "bench", str(relu), "-b", "fake", *FAST, "--json", str(link), "--csv", str(dangling))
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == real and json.loads(real.read_text())["schema"] == "hwkit.bench/2"
    assert dangling.is_symlink() and (tmp_path / "results" / "new.csv").read_text().startswith("backend,")
    assert sorted(p.name for p in real.parent.iterdir()) == ["new.csv", "r.json"]  # no temporary left


def test_row_54_check_writable_in_the_api(tmp_path):
    from hwkit._files import atomic_write, check_writable

    source = tmp_path / "m.onnx"
    source.write_bytes(b"model")
    with pytest.raises(OutputError, match="it is an input of this run"):
        check_writable(tmp_path / "sub" / ".." / "m.onnx", [None, source])
    assert check_writable(tmp_path / "other.json", [source]) == tmp_path / "other.json"
    link = tmp_path / "l"
    link.symlink_to(tmp_path / "t")
    assert atomic_write(link, "x") == tmp_path / "t" and link.is_symlink() and (tmp_path / "t").read_text() == "x"


def test_row_54_an_output_that_is_or_links_to_a_fifo_or_device_is_refused(capsys, fake_registry, relu, tmp_path):
    """Never renamed over: as root, replacing a link's target /dev/zero with a file would succeed.
    (A FIFO here, so that a regression cannot damage the machine's /dev.)"""
    from hwkit._files import atomic_write, write_cached

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link.json"
    link.symlink_to(fifo)
    for output in (fifo, link):
        code, out, err = cli(capsys, "bench", str(relu), "-b", "fake", *FAST, "--json", str(output))
        assert code == 2 and out == "" and len(err) == 1 and "is a FIFO (named pipe); choose a file path" in err[0]
        with pytest.raises(OutputError, match="is a FIFO"):
            atomic_write(output, "x")
    assert stat.S_ISFIFO(fifo.stat().st_mode) and link.is_symlink()
    write_cached(link, b"entry")  # a cache entry replaces a planted link instead
    assert not link.is_symlink() and link.read_bytes() == b"entry" and stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.parametrize("field, value", [("seeds", 0), ("seeds", True), ("seed", -1), ("threads", -1),
                                          ("threads", 1.5), ("atol", float("nan")), ("rtol", -1.0),
                                          ("timeout", float("inf"))])
def test_check_settings_refuse_what_bench_settings_refuse(field, value):
    from hwkit import CheckSettings, OptionError

    with pytest.raises(OptionError, match=field):
        CheckSettings(**{field: value})


@pytest.mark.parametrize("value", ["0", "-1", "nan", "1.5"])
def test_row_52_peak_refuses_a_thread_count_it_cannot_use(value, capsys):
    from hwkit.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["peak", "--threads", value])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("hwkit: error: argument --threads:")  # one line, the flag named
