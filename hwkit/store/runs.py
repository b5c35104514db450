"""Saving bench results and finding them again: history, one run, the run before, a trend.

Every document goes in and comes out through ``hwkit.report.schema.load_document``, the one reader
of result files, so a saved run is checked (and read) exactly like a ``--json`` file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from hwkit._files import write_json
from hwkit.errors import ResultError
from hwkit.report.diff import compare_results, refusal
from hwkit.report.schema import load_document
from hwkit.store.database import connect, database_path, sqlite_errors, transaction
from hwkit.store.rows import backend_names, machine_key, machine_summary, measurement_rows

Where = str | os.PathLike[str] | None  # a database file; None: $HWKIT_DB or the default


@dataclasses.dataclass(frozen=True)
class SavedRun:
    """One saved run, as history lists it."""

    id: int
    saved_utc: str
    model_name: str
    model_sha256: str
    machine_key: str
    machine: str
    backends: str
    hwkit_version: str | None


_RUN_COLUMNS = "id, saved_utc, model_name, model_sha256, machine_key, machine, backends, hwkit_version"


@contextlib.contextmanager
def _opened(where: Where) -> Iterator[sqlite3.Connection]:
    file = database_path(where)
    db = connect(file)
    try:
        with sqlite_errors(file):
            yield db
    finally:
        db.close()


def save_result(data: dict[str, Any], where: Where = None) -> SavedRun:
    """Save the bench result dict ``data`` (``BenchResult.to_dict()`` or a loaded ``--json``
    file) in the database; its id and columns.

    Raises:
        ResultError: ``data`` is not a valid bench result (nothing is saved).
        DatabaseError: the database cannot be opened or written.
    """
    text = _document_text(data)
    checked = _checked(text, "the result to save")
    system = checked.get("system") or {}
    values = (_now_utc(), checked["schema"], checked["model"]["name"], checked["model"]["sha256"],
              machine_key(checked), machine_summary(checked), backend_names(checked),
              (system.get("packages") or {}).get("hwkit"), _sha256(text), text)
    with _opened(where) as db, transaction(db):
        cursor = db.execute("INSERT INTO runs (saved_utc, schema, model_name, model_sha256, machine_key, machine, "
                            "backends, hwkit_version, document_sha256, document) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            values)
        run_id = int(cursor.lastrowid or 0)
        db.executemany("INSERT INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [(run_id, *row) for row in measurement_rows(checked)])
    return SavedRun(run_id, values[0], *values[2:8])


def list_runs(model: str | None = None, backends: Sequence[str] = (), where: Where = None,
              limit: int | None = None) -> list[SavedRun]:
    """Saved runs, newest first: of ``model`` (a name, or the start of a model sha256) if given,
    with at least one of ``backends`` if given, at most ``limit``."""
    sql, params = f"SELECT {_RUN_COLUMNS} FROM runs WHERE 1", list[Any]()
    if model:
        condition, params = _model_condition(model)
        sql += f" AND {condition}"
    if backends:
        sql += (" AND EXISTS (SELECT 1 FROM measurements m WHERE m.run_id = runs.id AND m.backend IN "
                f"({', '.join('?' * len(backends))}))")
        params += list(backends)
    sql += " ORDER BY id DESC" + (f" LIMIT {int(limit):d}" if limit else "")
    with _opened(where) as db:
        return [SavedRun(*row) for row in db.execute(sql, params).fetchall()]


def load_run(run_id: int, where: Where = None) -> dict[str, Any]:
    """The result dict saved as run ``run_id``.

    Raises:
        ResultError: no such run (the line names the history command), or its document is damaged.
    """
    with _opened(where) as db:
        row = db.execute("SELECT document FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise ResultError(f"no saved run {run_id} in {database_path(where)}; list the saved runs with hwkit history")
    return _checked(row[0], f"saved run {run_id} in {database_path(where)}")


def newest_run(where: Where = None) -> tuple[int, dict[str, Any]]:
    """The id and result dict of the newest saved run."""
    with _opened(where) as db:
        row = db.execute("SELECT id FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        raise ResultError(f"no saved run in {database_path(where)}; save one with hwkit bench --save")
    return int(row[0]), load_run(int(row[0]), where)


def previous_run(data: dict[str, Any], where: Where = None) -> tuple[int, dict[str, Any]]:
    """The newest saved run before ``data`` of the same model graph, on the same machine
    (``rows.machine_key``), sharing a measured backend, device, batch and precision with it,
    that ``hwkit compare`` can compare with it (same input shapes). "Before": saved earlier than
    ``data`` when ``data`` itself is saved, else any saved run.

    Raises:
        ResultError: there is none (the line says what was looked for).
    """
    text = _document_text(data)
    wanted = {row[:4] for row in measurement_rows(data) if row[4] == "ok"}
    with _opened(where) as db:
        itself = db.execute("SELECT max(id) FROM runs WHERE document_sha256 = ?", (_sha256(text),)).fetchone()[0]
        candidates = [int(row[0]) for row in db.execute(
            "SELECT id FROM runs WHERE model_sha256 = ? AND machine_key = ? AND id < ? ORDER BY id DESC",
            (data["model"]["sha256"], machine_key(data), itself if itself is not None else 2**62))]
        measured = {run_id: {tuple(row) for row in db.execute(
            "SELECT backend, device, batch, precision FROM measurements WHERE run_id = ? AND status = 'ok'",
            (run_id,))} for run_id in candidates}
    for run_id in candidates:
        if measured[run_id] & wanted:
            old = load_run(run_id, where)
            if refusal(old, data) is None and compare_results(old, data)[0]:
                return run_id, old
    backends = ", ".join(sorted({b for b, *_ in wanted})) or "no measured backend"
    raise ResultError(f"no earlier saved run of {data['model']['name']} (model sha256 {data['model']['sha256'][:12]}) "
                      f"on this machine ({machine_summary(data)}) with {backends} at the same batch sizes and shapes "
                      f"in {database_path(where)}; save one with hwkit bench --save, or compare two files: "
                      "hwkit compare OLD.json NEW.json")


def trend_points(model: str, backend: str, where: Where = None) -> list[dict[str, Any]]:
    """Every measured row of ``backend`` (a name, or NAME:DEVICE) in the saved runs of ``model``,
    oldest first: run id, time, graph, machine, device, batch, precision, median and 95% CI."""
    name, _, device = backend.partition(":")
    condition, params = _model_condition(model)
    sql = ("SELECT r.id, r.saved_utc, r.model_name, r.model_sha256, r.machine_key, r.machine, r.hwkit_version, "
           "m.device, m.batch, m.precision, m.median_s, m.ci_low_s, m.ci_high_s "
           f"FROM runs r JOIN measurements m ON m.run_id = r.id WHERE {condition} AND m.backend = ? "
           "AND m.status = 'ok'" + (" AND m.device = ?" if device else "") + " ORDER BY r.id, m.batch, m.device")
    keys = ("run_id", "saved_utc", "model_name", "model_sha256", "machine_key", "machine", "hwkit_version",
            "device", "batch", "precision", "median_s", "ci_low_s", "ci_high_s")
    with _opened(where) as db:
        rows = db.execute(sql, [*params, name, *([device] if device else [])]).fetchall()
    return [dict(zip(keys, row)) for row in rows]


def _model_condition(model: str) -> tuple[str, list[Any]]:
    """SQL matching a model by its name, or by the start (6+ hex digits) of its sha256."""
    if re.fullmatch(r"[0-9a-fA-F]{6,64}", model):
        return "(model_name = ? OR model_sha256 LIKE ?)", [model, model.lower() + "%"]
    return "model_name = ?", [model]


def _document_text(data: dict[str, Any]) -> str:
    """The stored form: compact strict JSON (non-finite numbers as "nan"/"inf" strings), so that
    the same result always gives the same text and hash."""
    try:
        return write_json(data, compact=True)
    except (TypeError, ValueError) as e:
        raise ResultError(f"the result cannot be saved: it is not a JSON document ({e}); save a bench result "
                          "(BenchResult.to_dict() or a hwkit bench --json file)") from e


def _checked(text: str, what: str) -> dict[str, Any]:
    """``text`` read as ``load_result`` reads a file, with ``what`` naming it in errors."""
    return load_document(text, what)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
