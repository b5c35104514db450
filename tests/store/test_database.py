"""The database file: schema migrations, concurrent writers, and the one-line errors for a
corrupt, read-only, newer or misplaced file."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hwkit.store import database
from hwkit.store.database import SCHEMA_VERSION, DatabaseError, connect
from hwkit.store.runs import list_runs, load_run, save_result, trend_points

from tests.store.conftest import cli


def test_a_new_database_is_created_at_the_current_version_in_wal_mode(private_database, result):
    saved = save_result(result)
    with contextlib.closing(sqlite3.connect(private_database)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(database.MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM measurements WHERE run_id = ?", (saved.id,)).fetchone()[0] == 2
    assert load_run(saved.id) == result  # the whole document, as --json writes it


def test_a_version_1_file_is_migrated_and_its_runs_indexed(private_database, result):
    """Version 1 kept documents only; opening it adds the measurements table, filled from them."""
    text = json.dumps(result)
    with contextlib.closing(sqlite3.connect(private_database, isolation_level=None)) as db:
        database.MIGRATIONS[0](db)
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO runs (saved_utc, schema, model_name, model_sha256, machine_key, machine, backends, "
                   "hwkit_version, document_sha256, document) VALUES ('2026-01-01T00:00:00+00:00', ?, 'mlp', ?, "
                   "'k', 'm', 'fake,timed', '0.1.0', 'x', ?)", (result["schema"], result["model"]["sha256"], text))
    connect().close()
    with contextlib.closing(sqlite3.connect(private_database)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    (point,) = trend_points("mlp", "timed")
    assert point["run_id"] == 1 and point["precision"] == "fp32"
    assert point["median_s"] == pytest.approx(next(r for r in result["results"] if r["backend"] == "timed")
                                              ["latency_s"]["median"])
    assert [run.id for run in list_runs("mlp", ["fake"])] == [1]


def test_row_96_a_database_of_a_newer_hwkit_is_refused(capsys, private_database):
    connect().close()
    with contextlib.closing(sqlite3.connect(private_database)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    code, out, err = cli(capsys, "history")
    assert code == 2 and out == ""
    assert err == [f"hwkit: error: the results database {private_database} has schema version {SCHEMA_VERSION + 1}, "
                   f"newer than this hwkit reads ({SCHEMA_VERSION}); upgrade hwkit, or choose another file with --db PATH"]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_row_97_a_corrupt_database_is_one_line_naming_the_file_and_how_to_move_it_aside(
        capsys, private_database, result, damage):
    if damage == "garbage":
        private_database.write_bytes(b"this is not a database at all\n" * 200)
    else:  # a real database cut short, as a full disk or a bad copy leaves it
        for _ in range(3):
            save_result(result)
        connect().execute("PRAGMA wal_checkpoint(TRUNCATE)").connection.close()
        raw = private_database.read_bytes()
        private_database.write_bytes(raw[:100] + b"\xff" * (len(raw) - 100))
    code, out, err = cli(capsys, "history")
    assert code == 2 and out == "" and len(err) == 1, err
    assert err[0].startswith(f"hwkit: error: the results database {private_database} is damaged (")
    assert f"move it aside (mv '{private_database}' '{private_database}.broken') and hwkit starts a new one" in err[0]
    os.replace(private_database, f"{private_database}.broken")  # what the line says to do
    assert cli(capsys, "history")[0] == 0


def test_row_98_a_read_only_location_is_a_clear_error(tmp_path, result):
    folder = tmp_path / "locked"
    folder.mkdir()
    path = folder / "results.sqlite3"
    folder.chmod(0o555)
    try:
        if os.geteuid() != 0:
            with pytest.raises(DatabaseError) as caught:
                save_result(result, path)
            message = str(caught.value)
        else:  # root ignores permission bits: drop the capabilities that let it
            if not shutil.which("setpriv"):
                pytest.skip("running as root and util-linux's setpriv is missing: cannot make a folder read-only")
            run = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", sys.executable,
                                  "-m", "hwkit.cli", "history", "--db", str(path)], capture_output=True, text=True,
                                 timeout=60)
            assert run.returncode == 2 and run.stdout == "", run.stderr
            (message,) = run.stderr.splitlines()
    finally:
        folder.chmod(0o755)
    assert message.removeprefix("hwkit: error: ") == (
        f"cannot write the results database {path}: its folder {folder} is not writable (Permission denied); "
        "choose a writable file with --db PATH or HWKIT_DB=PATH")


def test_row_99_a_database_path_that_is_a_folder_or_under_a_file(capsys, tmp_path):
    code, _, err = cli(capsys, "history", "--db", str(tmp_path))
    assert code == 2 and err == [f"hwkit: error: the results database {tmp_path} is a folder; pass a file path with "
                                 "--db PATH or HWKIT_DB"]
    (tmp_path / "file").write_text("x")
    code, _, err = cli(capsys, "history", "--db", str(tmp_path / "file" / "r.sqlite3"))
    assert code == 2 and err == [f"hwkit: error: cannot create the folder of the results database "
                                 f"{tmp_path / 'file' / 'r.sqlite3'} ({tmp_path / 'file'} is a file, not a folder); choose a writable place with "
                                 "--db PATH or HWKIT_DB=PATH"]


SAVER = """
import json, sys
from hwkit.store.runs import save_result
data = json.loads(open(sys.argv[1]).read())
print("ready", flush=True)
sys.stdin.readline()  # both start saving at the same moment, on a database neither has created
for i in range(int(sys.argv[3])):
    data["elapsed_s"] = float(sys.argv[2]) * 1000 + i  # every document distinct
    save_result(data, sys.argv[4])
"""


def test_two_processes_saving_at_once_lose_nothing(tmp_path, result):
    """Two real processes start on a database that does not exist yet (both create and migrate
    it) and save 25 runs each, interleaved: all 50 are there, each whole."""
    source, path, count = tmp_path / "r.json", tmp_path / "shared.sqlite3", 25
    source.write_text(json.dumps(result))
    writers = [subprocess.Popen([sys.executable, "-c", SAVER, str(source), str(n), str(count), str(path)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for n in (1, 2)]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    for writer in writers:  # "go" to both before waiting for either
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        code = writer.wait(timeout=120)
        with writer.stdin, writer.stdout, writer.stderr:
            err = writer.stderr.read()
        assert code == 0 and err == "", err
    runs = list_runs(where=path)
    assert len(runs) == 2 * count and len({run.id for run in runs}) == 2 * count
    elapsed = sorted(load_run(run.id, path)["elapsed_s"] for run in runs)
    assert elapsed == sorted(float(n * 1000 + i) for n in (1, 2) for i in range(count))
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM measurements").fetchone()[0] == 2 * count * len(result["results"])
