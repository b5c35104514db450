"""The cache holds derived data, so it heals: a corrupt, truncated or foreign entry is rebuilt
with one warning, an unusable cache folder is replaced by a temporary one with one warning, and
processes filling it at once all succeed. Every user of the cache is covered: the built-in
models, the peak figures, and torch exports."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import onnx
import pytest

from hwkit import _files
from hwkit._files import cache_dir, cached, read_cached, write_cached
from hwkit.cli import main
from hwkit.model import Model
from hwkit.model.zoo import BUILTIN_MODELS, ZOO_VERSION
from tests.helpers import FAST_BENCH


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(root))
    return root


@pytest.fixture
def no_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench asks for the matmul peak: a fixed figure, so no test here measures it for seconds."""
    figure = {"gflops": 100.0, "library": "test", "device": "test", "threads": 1, "size": 8}
    monkeypatch.setattr("hwkit.measure.efficiency.peak_gflops", lambda *a, **k: figure)


def _bench_mlp(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """``hwkit bench mlp`` in this process on the fake backend; its exit code and warning lines."""
    code = main(["bench", "mlp", "-b", "fake", "--no-isolation", *FAST_BENCH])
    err = capsys.readouterr().err
    assert "hwkit: error" not in err, err
    return code, [line for line in err.splitlines() if line.startswith("hwkit: warning:")]


def _intact(entry: Path) -> bool:
    checksum = entry.with_name(entry.name + ".sha256").read_text().split()[0]
    return entry.is_file() and checksum == hashlib.sha256(entry.read_bytes()).hexdigest()


# -- the mechanism -----------------------------------------------------------------------------

def test_an_entry_is_built_once_then_read(cache: Path) -> None:
    calls = []

    def build() -> bytes:
        calls.append(1)
        return b"derived"

    entry = cache_dir("things") / "a.bin"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the normal path warns about nothing
        assert cached(entry, build) == entry and cached(entry, build) == entry
    assert calls == [1] and entry.read_bytes() == b"derived" and _intact(entry)
    done = subprocess.run(["sha256sum", "-c", entry.name + ".sha256"], cwd=entry.parent, capture_output=True)
    assert done.returncode == 0, "the checksum file is in sha256sum's format"


CORRUPTIONS = {
    "garbage": lambda e: e.write_bytes(b"\x00garbage\xff" * 100),
    "truncated": lambda e: e.write_bytes(e.read_bytes()[: len(e.read_bytes()) // 2]),
    "emptied": lambda e: e.write_bytes(b""),
    "one bit flipped": lambda e: e.write_bytes(bytes([e.read_bytes()[0] ^ 1]) + e.read_bytes()[1:]),
    "checksum removed": lambda e: e.with_name(e.name + ".sha256").unlink(),
    "checksum garbled": lambda e: e.with_name(e.name + ".sha256").write_bytes(b"\xff\xfe"),
    "checksum of other bytes": lambda e: e.with_name(e.name + ".sha256").write_text(f"{'0' * 64}  {e.name}\n"),
    "a link to /dev/zero": lambda e: (e.unlink(), e.symlink_to("/dev/zero")),  # reading it would never end
    "a FIFO": lambda e: (e.unlink(), os.mkfifo(e)),  # reading it would block
    "checksum a FIFO": lambda e: (e.with_name(e.name + ".sha256").unlink(), os.mkfifo(e.with_name(e.name + ".sha256"))),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_row_32_a_corrupt_builtin_is_rebuilt_with_one_warning(corrupt, cache, no_peak, fake_registry, capsys) -> None:
    assert _bench_mlp(capsys) == (0, [])
    entry = cache / "builtins" / f"mlp-zoo{ZOO_VERSION}.onnx"
    expected = entry.read_bytes()
    corrupt(entry)
    code, warned = _bench_mlp(capsys)
    assert code == 0 and len(warned) == 1, warned
    assert warned[0].startswith(f"hwkit: warning: cached {entry} ") and warned[0].endswith("; rebuilding it")
    healed = Model.builtin("mlp")
    assert healed.proto.SerializeToString() == expected and _intact(healed.path)
    assert _bench_mlp(capsys) == (0, []), "healed for good: the next run warns about nothing"


def test_row_32_a_foreign_builtin_with_a_matching_checksum_is_rebuilt(cache, capsys) -> None:
    cnn, mlp = Model.builtin("cnn").path, Model.builtin("mlp").path
    for suffix in ("", ".sha256"):  # the cnn's entry and checksum copied over the mlp's: they match
        shutil.copy(cnn.with_name(cnn.name + suffix), mlp.with_name(mlp.name + suffix))
    with pytest.warns(UserWarning, match=r"is not the entry expected \(graph 'cnn' made by 'hwkit zoo"):
        model = Model.builtin("mlp")
    assert model.proto.graph.name == "mlp" and _intact(model.path)


def test_an_entry_from_an_older_zoo_is_not_read(cache) -> None:
    path = Model.builtin("mlp").path
    old = onnx.load(str(path))
    old.producer_version = f"zoo{ZOO_VERSION - 1}"
    write_cached(path, old.SerializeToString())
    with pytest.warns(UserWarning, match="made by 'hwkit zoo"):
        assert Model.builtin("mlp").proto.producer_version == f"zoo{ZOO_VERSION}"


PEAK = {"gflops": 50.0, "library": "numpy 2", "device": "cpu0", "threads": 1, "size": 2048}
BAD_PEAKS = {
    "not JSON": b"{gflops",
    "not a dict": b"[1, 2]",
    "a key missing": json.dumps({k: v for k, v in PEAK.items() if k != "device"}).encode(),
    "a foreign key": json.dumps({**PEAK, "extra": 1}).encode(),
    "gflops a string": json.dumps({**PEAK, "gflops": "50"}).encode(),
    "threads a float": json.dumps({**PEAK, "threads": 1.5}).encode(),
    "threads a bool": json.dumps({**PEAK, "threads": True}).encode(),
    "gflops nan": json.dumps({**PEAK, "gflops": "nan"}).encode(),
    "gflops zero": json.dumps({**PEAK, "gflops": 0}).encode(),
}


@pytest.fixture
def fake_measure(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The peak's child process replaced by one printing PEAK at once; returns its call log."""
    calls: list[str] = []

    def run(command, **kwargs):
        calls.append(" ".join(command))
        return subprocess.CompletedProcess(command, 0, stdout=json.dumps(PEAK) + "\n", stderr="")

    monkeypatch.setattr("hwkit.measure.peak.subprocess.run", run)
    return calls


@pytest.mark.parametrize("bad", BAD_PEAKS.values(), ids=BAD_PEAKS.keys())
def test_row_32_a_corrupt_or_foreign_peak_figure_is_measured_again(bad, cache, fake_measure) -> None:
    from hwkit.measure.peak import peak_gflops

    assert peak_gflops("cpu", 1) == PEAK and len(fake_measure) == 1
    (entry,) = (cache / "peak").glob("*.json")
    write_cached(entry, bad)  # a checksum that matches: only the check of keys and types catches it
    with pytest.warns(UserWarning, match=f"cached {entry} is not the entry expected"):
        assert peak_gflops("cpu", 1) == PEAK
    assert len(fake_measure) == 2 and _intact(entry) and peak_gflops("cpu", 1) == PEAK and len(fake_measure) == 2


def test_a_measurement_that_is_not_a_figure_is_an_error_not_a_cache_entry(cache, monkeypatch) -> None:
    from hwkit.errors import BackendUnavailableError
    from hwkit.measure.peak import peak_gflops

    monkeypatch.setattr("hwkit.measure.peak.subprocess.run",
                        lambda command, **k: subprocess.CompletedProcess(command, 0, stdout="oops\n", stderr=""))
    with pytest.raises(BackendUnavailableError, match=r"gave no figure \(not JSON"):
        peak_gflops("cpu", 1)
    assert not list((cache / "peak").iterdir())


def test_a_corrupt_torch_export_is_exported_again(cache) -> None:
    torch = pytest.importorskip("torch")
    from hwkit.model.export import export_key

    module, args = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh()), (torch.randn(1, 3),)
    entry = cache_dir("exports") / f"{export_key(module, args, (None, None, None))}.onnx"
    write_cached(entry, b"\xff\xff\xff")  # its checksum matches: only the ONNX check catches it
    with pytest.warns(UserWarning, match=r"is not the entry expected \(not ONNX"):
        model = Model.from_torch(module, args)
    assert _intact(entry) and onnx.load_model_from_string(entry.read_bytes()) == model.proto


# -- an unusable cache folder ------------------------------------------------------------------

def _file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("not a folder")
    return tmp / "a_file"


def _under_a_file(tmp: Path) -> Path:
    return _file(tmp) / "cache"


def _read_only(tmp: Path) -> Path:
    if os.geteuid() == 0:
        pytest.skip("root writes through folder permissions; the read-only mount case covers it")
    folder = tmp / "read_only"
    folder.mkdir(mode=0o555)
    return folder


def _read_only_mount(tmp: Path) -> Path:
    target = Path("/sys/hwkit-cache-test")  # sysfs: mounted read-only, or refusing new folders
    if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and not _refuses(target):
        pytest.skip("no read-only mount at /sys on this machine")
    return target


def _refuses(folder: Path) -> bool:
    try:
        folder.mkdir()
    except OSError:
        return True
    folder.rmdir()
    return False


def _part_a_file(tmp: Path) -> Path:
    (tmp / "cache").mkdir()
    (tmp / "cache" / "builtins").write_text("where the built-in models go")
    return tmp / "cache"


UNUSABLE = {"a file": _file, "under a file": _under_a_file, "read-only folder": _read_only,
            "read-only mount": _read_only_mount, "its builtins folder a file": _part_a_file}


@pytest.mark.parametrize("make", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_row_33_an_unusable_cache_folder_falls_back_to_a_temporary_one(make, tmp_path, monkeypatch, no_peak,
                                                                        fake_registry, capsys) -> None:
    unusable = make(tmp_path)
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(unusable))
    code, warned = _bench_mlp(capsys)
    assert code == 0 and len(warned) == 1, warned
    assert warned[0].startswith(f"hwkit: warning: cache folder {unusable}") and "set HWKIT_CACHE_DIR" in warned[0]
    assert _bench_mlp(capsys) == (0, []), "one warning per process"
    model = Model.builtin("mlp")
    assert model.path is not None and model.path.is_relative_to(_files._temporary_folder()) and _intact(model.path)
    assert _bench_mlp(capsys) == (0, [])


def test_row_33_no_usable_folder_at_all_is_one_error_line(tmp_path, monkeypatch, fake_registry, capsys) -> None:
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(_file(tmp_path)))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "a_file" / "tmp"))
    _files._temporary_folder.cache_clear()  # this process may have made one already
    try:
        code = main(["run", "mlp", "-b", "fake"])
    finally:
        _files._temporary_folder.cache_clear()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"hwkit: error: cache folder {tmp_path / 'a_file'}/builtins cannot be used (")
    assert "and no temporary folder can be made in" in err
    assert err.rstrip().endswith("set HWKIT_CACHE_DIR to a writable folder")


def test_an_entry_that_cannot_be_written_goes_to_the_temporary_folder(cache, no_peak, fake_registry, capsys) -> None:
    entry = cache_dir("builtins") / f"mlp-zoo{ZOO_VERSION}.onnx"
    (entry / "kept").mkdir(parents=True)  # a folder where the file goes: not hwkit's to delete
    code, warned = _bench_mlp(capsys)
    assert code == 0 and len(warned) == 2, warned
    assert "is not a regular file" in warned[0] and f"cannot write the cache entry {entry} (Is a directory)" in warned[1]
    assert (entry / "kept").is_dir()
    where = cached(entry, lambda: b"unused")
    assert where.is_relative_to(_files._temporary_folder()) and _intact(where)


# -- processes filling the cache at once -------------------------------------------------------

def test_processes_filling_the_cache_at_once_all_succeed_silently(cache, tmp_path) -> None:
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import pathlib, sys, time
        from hwkit.model.zoo import builtin_path
        while not pathlib.Path({str(go)!r}).exists():  # start together: the race is the test
            time.sleep(0.001)
        path, _ = builtin_path("cnn")
        print(path)
    """)
    env = {**os.environ, "HWKIT_CACHE_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-W", "error", "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    entry = Path(results[0][0].strip())
    assert {out.strip() for out, _ in results} == {str(entry)} and _intact(entry)
    assert read_cached(entry) == BUILTIN_MODELS["cnn"].build(ZOO_VERSION).SerializeToString()
    assert [p.name for p in entry.parent.iterdir() if p.name.endswith(".tmp")] == [], "no temporary file left"


def test_a_plugin_cache_folder_follows_hwkit_cache_dir(tmp_path, monkeypatch) -> None:
    from hwkit.backend import cache_folder

    monkeypatch.setenv("HWKIT_CACHE_DIR", str(tmp_path / "cache"))
    folder = cache_folder("someplugin")
    assert folder == tmp_path / "cache" / "someplugin" and folder.is_dir()
