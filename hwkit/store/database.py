"""The SQLite file of saved runs: where it lives, opening it safely, and its schema migrations.

One file, in WAL mode (readers never wait for a writer), every write in one ``BEGIN IMMEDIATE``
transaction, and a busy timeout long enough that processes saving at the same moment queue
instead of failing. The schema's version is ``PRAGMA user_version``; ``MIGRATIONS`` takes a file
of any older version to the current one, one step (and one transaction) at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import platformdirs

from hwkit._files import unwritable
from hwkit.errors import HwkitError

DB_ENV = "HWKIT_DB"
FILE_NAME = "results.sqlite3"
# Long enough for another process's save (milliseconds) or migration to finish; short enough
# that a process holding the lock for good (a stopped debugger) ends in an error, not a hang.
BUSY_TIMEOUT_S = 30.0


class DatabaseError(HwkitError):
    """The results database cannot be opened, read or written (corrupt, read-only, locked,
    written by a newer hwkit, ...)."""


def database_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The database file: ``path`` if given, else ``$HWKIT_DB``, else ``results.sqlite3`` in the
    user's data folder (``platformdirs.user_data_dir("hwkit")``)."""
    chosen = path or os.environ.get(DB_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return Path(platformdirs.user_data_dir("hwkit")) / FILE_NAME


Migration = Callable[[sqlite3.Connection], None]


def _create_runs(db: sqlite3.Connection) -> None:
    # Version 1: one row per saved run, the whole result document (as `bench --json` writes it)
    # beside the columns that history filters and sorts on.
    db.execute("""CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        saved_utc TEXT NOT NULL,
        schema TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        machine_key TEXT NOT NULL,
        machine TEXT NOT NULL,
        backends TEXT NOT NULL,
        hwkit_version TEXT,
        document_sha256 TEXT NOT NULL,
        document TEXT NOT NULL)""")
    db.execute("CREATE INDEX runs_by_model ON runs (model_sha256, machine_key, id)")
    db.execute("CREATE INDEX runs_by_document ON runs (document_sha256)")


def _create_measurements(db: sqlite3.Connection) -> None:
    # Version 2: one row per backend, device, batch and precision of each run, so that trend and
    # compare --last find their rows without parsing every document; filled from the documents
    # of a version-1 file.
    from hwkit.store.rows import measurement_rows  # the one place that reads rows out of a result

    db.execute("""CREATE TABLE measurements (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        backend TEXT NOT NULL,
        device TEXT NOT NULL,
        batch INTEGER NOT NULL,
        precision TEXT NOT NULL,
        status TEXT NOT NULL,
        median_s REAL,
        ci_low_s REAL,
        ci_high_s REAL)""")
    db.execute("CREATE INDEX measurements_by_backend ON measurements (backend, run_id)")
    for run_id, document in db.execute("SELECT id, document FROM runs").fetchall():
        db.executemany("INSERT INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [(run_id, *row) for row in measurement_rows(json.loads(document))])


# The schema's history: entry N-1 takes a file from version N-1 to N. Append, never edit.
MIGRATIONS: list[Migration] = [_create_runs, _create_measurements]
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: str | os.PathLike[str] | None = None) -> sqlite3.Connection:
    """An open connection to the database at ``database_path(path)``, created and migrated to
    ``SCHEMA_VERSION`` if needed. Close it when done (``contextlib.closing``).

    Raises:
        DatabaseError: one line naming the file and what to do (corrupt: move it aside;
            read-only or not creatable: choose another path; newer schema: upgrade hwkit).
    """
    file = database_path(path)
    if file.is_dir():
        raise DatabaseError(f"the results database {file} is a folder; pass a file path with --db PATH or {DB_ENV}")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in file.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else (e.strerror or str(e))
        raise DatabaseError(f"cannot create the folder of the results database {file} ({why}); "
                            f"choose a writable place with --db PATH or {DB_ENV}=PATH") from e
    with sqlite_errors(file):
        db = sqlite3.connect(file, timeout=BUSY_TIMEOUT_S, isolation_level=None)  # transactions by hand
        try:
            db.execute("PRAGMA foreign_keys = ON")
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")  # persistent: set once per file
            _migrate(db, file)
        except BaseException:
            db.close()
            raise
    return db


def _migrate(db: sqlite3.Connection, file: Path) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise DatabaseError(f"the results database {file} has schema version {version}, newer than this hwkit "
                            f"reads ({SCHEMA_VERSION}); upgrade hwkit, or choose another file with --db PATH")
    while version < SCHEMA_VERSION:
        with transaction(db):
            # Another process may have migrated since we looked: read the version under the lock.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                MIGRATIONS[version](db)
                version += 1
                db.execute(f"PRAGMA user_version = {version:d}")


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``: a second writer waits up to
    ``BUSY_TIMEOUT_S`` here instead of failing halfway); committed, or rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@contextlib.contextmanager
def sqlite_errors(file: Path) -> Iterator[None]:
    """sqlite3's exceptions as one ``DatabaseError`` line that names ``file`` and the fix."""
    try:
        yield
    except sqlite3.DatabaseError as e:
        raise DatabaseError(_explain(file, e)) from e


def _explain(file: Path, error: sqlite3.DatabaseError) -> str:
    text = str(error)
    lowered = text.lower()
    choose = f"choose a writable file with --db PATH or {DB_ENV}=PATH"
    if "locked" in lowered or "busy" in lowered:
        return (f"the results database {file} stayed locked by another process for {BUSY_TIMEOUT_S:g} s ({text}); "
                "try again when it is done, or choose another file with --db PATH")
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        reason = unwritable(file.parent)
        where = f"its folder {file.parent} is not writable ({reason})" if reason else "it is read-only"
        return f"cannot write the results database {file}: {where}; {choose}"
    if "full" in lowered or "disk i/o" in lowered:
        return f"cannot write the results database {file} ({text}); free some space, or {choose}"
    if isinstance(error, sqlite3.OperationalError) and "not a database" not in lowered:
        return f"the results database {file} failed: {text}"
    return (f"the results database {file} is damaged ({text}); move it aside (mv '{file}' '{file}.broken') and "
            "hwkit starts a new one, or choose another file with --db PATH")
