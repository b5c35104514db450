"""bench --save, history, trend and compare --last through the CLI, in-process on the fake backends."""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3

import pytest

from hwkit._files import write_json
from hwkit.errors import ResultError
from hwkit.store import database
from hwkit.store.runs import list_runs, load_run, save_result

from tests.store.conftest import BENCH_FAST, cli, slowed, steady


def bench(capsys, *extra: str) -> tuple[int, str, list[str]]:
    return cli(capsys, "bench", "mlp", "-b", "fake", *BENCH_FAST, *extra)


def test_two_saved_runs_show_in_history_and_compare_last_finds_no_regression(capsys, fake_registry, private_database):
    for _ in range(2):
        code, out, err = bench(capsys, "--save")
        assert code == 0, err
        assert "│ fake" in out  # the table as always
    assert err[-1] == f"saved run 2 in {private_database}"
    code, out, err = cli(capsys, "history")
    assert code == 0 and err == []
    lines = [line for line in out.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in lines] == ["2", "1"]  # newest first
    assert all("mlp" in line and "fake" in line for line in lines)
    code, out, err = cli(capsys, "compare", "--last")
    assert code in (0, 1), err  # two real runs of one fake backend: noise either way, never refused
    assert err[0] == "comparing the newest saved run (2) with the previous saved run (1)"


def test_compare_last_flags_a_planted_regression(capsys, tmp_path, result):
    result = steady(result)
    first, second = save_result(result), save_result(result)
    slow = tmp_path / "slow.json"
    write_json(slowed(result, "timed", 1.5), slow)
    code, out, err = cli(capsys, "compare", "--last", str(slow))
    assert code == 1, err
    assert err[0] == f"comparing {slow} with the previous saved run ({second.id})"
    verdicts = {line.split("│")[2].strip(): line for line in out.splitlines() if line.startswith("│ mlp")}
    assert "REGRE" in verdicts["timed"] and "+50.0%" in verdicts["timed"]  # the cell is cut at 80 columns
    assert "REGRE" not in verdicts["fake"]
    # Saved, the slow run is the newest; --last alone compares it with the run before it.
    save_result(slowed(result, "timed", 1.5))
    code, out, err = cli(capsys, "compare", "--last")
    assert code == 1 and err[0] == "comparing the newest saved run (3) with the previous saved run (2)"
    assert first.id == 1


def test_compare_last_skips_runs_of_another_model_machine_or_backend(capsys, result):
    other_machine = json.loads(json.dumps(result))
    other_machine["system"]["cpu"] = "Some Other CPU"
    other_model = json.loads(json.dumps(result))
    other_model["model"]["sha256"] = "f" * 64
    only_fake = json.loads(json.dumps(result))
    only_fake["results"] = [r for r in only_fake["results"] if r["backend"] == "fake"]
    baseline = save_result(steady(result))
    for data in (other_machine, other_model):
        save_result(data)
    previous = save_result(only_fake)
    newest = save_result(slowed(result, "timed", 2.0))
    code, out, err = cli(capsys, "compare", "--last")
    # Not runs 3 and 2 (another graph, another machine): run 4, which shares "fake" with it.
    assert err[0] == f"comparing the newest saved run ({newest.id}) with the previous saved run ({previous.id})"
    assert "timed" not in " ".join(line for line in out.splitlines() if line.startswith("│"))
    assert baseline.id == 1 and code == 0


def test_row_100_compare_last_without_an_earlier_run(capsys, result):
    code, out, err = cli(capsys, "compare", "--last")
    assert code == 2 and err[-1].startswith("hwkit: error: no saved run in ")
    save_result(result)
    code, out, err = cli(capsys, "compare", "--last")
    assert code == 2 and out == ""
    assert err[-1].startswith("hwkit: error: no earlier saved run of mlp (model sha256 ")
    assert "with fake, timed at the same batch sizes and shapes" in err[-1]
    assert err[-1].endswith("save one with hwkit bench --save, or compare two files: hwkit compare OLD.json NEW.json")


def test_row_101_compare_takes_two_files_or_last_with_at_most_one(capsys, tmp_path):
    code, _, err = cli(capsys, "compare", "a.json")
    assert code == 2 and err == ["hwkit: error: compare takes two results, OLD.json NEW.json, or --last "
                                 "[RESULT.json] to compare with the previous saved run"]
    code, _, err = cli(capsys, "compare", "--last", "a.json", "b.json")
    assert code == 2 and err == ["hwkit: error: compare --last takes at most one result (RESULT.json); it finds the "
                                 "run to compare with in the results database"]


def test_hwkit_save_saves_every_bench_and_no_save_overrides_it(capsys, fake_registry, monkeypatch, private_database):
    monkeypatch.setenv("HWKIT_SAVE", "1")
    assert bench(capsys)[0] == 0
    assert bench(capsys, "--no-save")[0] == 0
    monkeypatch.setenv("HWKIT_SAVE", "0")
    assert bench(capsys)[0] == 0
    assert [run.id for run in list_runs()] == [1]


def test_row_102_an_unclear_hwkit_save_is_refused_before_measuring(capsys, fake_registry, monkeypatch):
    monkeypatch.setenv("HWKIT_SAVE", "sometimes")
    code, out, err = bench(capsys)
    assert code == 2 and out == ""
    assert err == ["hwkit: error: HWKIT_SAVE='sometimes' is neither yes nor no; set it to 1 (save every bench) or 0, "
                   "or unset it"]


def test_row_103_a_save_that_fails_after_measuring_loses_nothing(capsys, fake_registry, monkeypatch, tmp_path,
                                                                 private_database):
    """The database opens before measuring, then another process holds its write lock past the
    busy timeout: the table is printed and the JSON written, then one error line, exit 2."""
    database.connect().close()
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(private_database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        out_json = tmp_path / "r.json"
        code, out, err = bench(capsys, "--save", "--json", str(out_json))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2
    assert "│ fake" in out and json.loads(out_json.read_text())["results"][0]["status"] == "ok"
    assert err[-1] == (f"hwkit: error: the results database {private_database} stayed locked by another process for "
                       "0.2 s (database is locked); try again when it is done, or choose another file with --db PATH")
    assert list_runs() == []


def test_row_104_a_corrupt_database_fails_bench_save_before_measuring(capsys, fake_registry, private_database):
    private_database.write_bytes(b"\0" * 4096)
    code, out, err = bench(capsys, "--save")
    assert code == 2 and out == "" and len(err) == 1
    assert err[0].startswith(f"hwkit: error: the results database {private_database} is damaged (")
    assert "move it aside" in err[0]


def test_trend_shows_the_median_and_ci_over_saved_runs_and_plots_them(capsys, tmp_path, result):
    pytest.importorskip("matplotlib", reason="trend --plot needs matplotlib (hwkit[plot])")
    save_result(result)
    save_result(slowed(result, "timed", 1.25))
    plot = tmp_path / "trend.png"
    code, out, err = cli(capsys, "trend", "mlp", "-b", "timed", "--plot", str(plot))
    assert code == 0 and err == [f"wrote {plot}"]
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 2 and "1.000x" in rows[0] and "1.250x" in rows[1]
    assert all(" – " in row for row in rows)  # the CI's two ends
    assert plot.read_bytes().startswith(b"\x89PNG") and plot.stat().st_size > 10_000
    code, out, err = cli(capsys, "trend", "mlp", "-b", "openvino")
    assert code == 2 and err == [f"hwkit: error: no saved run of mlp measured openvino in {database.database_path()}; "
                                 "list what is saved with hwkit history mlp"]


def test_history_filters_by_model_and_backend(capsys, result):
    save_result(result)
    only_fake = json.loads(json.dumps(result))
    only_fake["results"] = [r for r in only_fake["results"] if r["backend"] == "fake"]
    save_result(only_fake)
    assert [r.id for r in list_runs(backends=["timed"])] == [1]
    assert [r.id for r in list_runs(result["model"]["sha256"][:8])] == [2, 1]
    code, out, _ = cli(capsys, "history", "cnn")
    assert code == 0 and out.startswith("no saved runs matching cnn in ")
    code, out, _ = cli(capsys, "history", "-b", "timed")
    assert [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")] == ["1"]


def test_row_105_a_saved_run_that_does_not_exist(capsys, tmp_path, result):
    save_result(result)
    code, out, err = cli(capsys, "report", "--run", "7", "--html", str(tmp_path / "r.html"))
    assert code == 2 and err == [f"hwkit: error: no saved run 7 in {database.database_path()}; list the saved runs "
                                 "with hwkit history"]
    with contextlib.closing(sqlite3.connect(database.database_path())) as db:  # a document damaged in place
        db.execute("UPDATE runs SET document = '{\"schema\": \"hwkit.bench/2\"}' WHERE id = 1")
        db.commit()
    code, out, err = cli(capsys, "report", "--run", "1", "--html", str(tmp_path / "r.html"))
    assert code == 2 and len(err) == 1 and "hwkit-run-" not in err[0]  # not the reader's temporary file
    assert err[0].startswith(f"hwkit: error: saved run 1 in {database.database_path()}: model is missing")
    with pytest.raises(ResultError):
        load_run(1)


def test_report_of_a_saved_run_and_of_a_file(capsys, tmp_path, result):
    pytest.importorskip("matplotlib", reason="the HTML report's plots need matplotlib (hwkit[plot])")
    saved = save_result(result)
    page = tmp_path / "run.html"
    code, _, err = cli(capsys, "report", "--run", str(saved.id), "--html", str(page))
    assert code == 0 and err == [f"wrote {page}"]
    assert f"saved run {saved.id} in {database.database_path()}" in page.read_text()
    source = tmp_path / "r.json"
    write_json(result, source)
    code, _, err = cli(capsys, "report", str(source), "--html", str(tmp_path / "file.html"))
    assert code == 0 and (tmp_path / "file.html").read_text().count("<svg") == 1
    code, _, err = cli(capsys, "report", str(source), "--html", str(source))  # never over its own input
    assert code == 2 and "it is an input of this run" in err[0]


def test_row_102_save_with_generate_is_refused_and_hwkit_save_only_warns(capsys, monkeypatch):
    code, out, err = cli(capsys, "bench", "mlp", "--generate", "--save")
    assert code == 2 and out == ""
    assert err == ["hwkit: error: --save keeps bench results (hwkit.bench); --generate results are not saved in the "
                   "database: write them with --json"]
    monkeypatch.setenv("HWKIT_SAVE", "1")
    with pytest.warns(UserWarning, match="HWKIT_SAVE is set, but --generate results are not saved"):
        from hwkit.cli.store_args import open_before_measuring
        open_before_measuring(argparse.Namespace(save=None, generate=True, db=None))
    assert list_runs() == []
