"""The options every command that uses the results database shares (``--db``, bench's ``--save``),
and bench's save: the database opened before measuring, the result saved after its files."""

from __future__ import annotations

import argparse
import os
import warnings
from typing import Any

from hwkit.cli.common import stderr
from hwkit.errors import HwkitError, OptionError
from hwkit.store.database import DB_ENV, connect, database_path
from hwkit.store.runs import save_result

SAVE_ENV = "HWKIT_SAVE"
_YES, _NO = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH",
                        help=f"the results database (default: ${DB_ENV}, else results.sqlite3 in the user data folder)")


def add_save_arguments(parser: argparse.ArgumentParser) -> None:
    """bench's ``--save`` / ``--no-save`` and ``--db``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--save", action="store_true", default=None,
                       help=f"save the full result in the results database (always: {SAVE_ENV}=1); see hwkit history")
    group.add_argument("--no-save", dest="save", action="store_false", help=f"do not save, whatever {SAVE_ENV} says")
    add_db_argument(parser)


def saving(args: argparse.Namespace) -> bool:
    """Whether this bench saves its result: ``--save``/``--no-save``, else ``$HWKIT_SAVE``.

    Raises:
        OptionError: ``$HWKIT_SAVE`` is neither yes nor no.
    """
    if args.save is not None:
        return bool(args.save)
    value = os.environ.get(SAVE_ENV, "").strip().lower()
    if value in _YES or value in _NO:
        return value in _YES
    raise OptionError(f"{SAVE_ENV}={os.environ[SAVE_ENV]!r} is neither yes nor no; set it to 1 (save every bench) "
                      "or 0, or unset it")


def open_before_measuring(args: argparse.Namespace) -> None:
    """Open (create, migrate) the database of a bench that will save, so that a corrupt,
    read-only or newer database fails before anything is measured.

    Raises:
        OptionError: ``--save`` with ``--generate``, whose results the database does not hold.
    """
    if not saving(args):
        return
    if getattr(args, "generate", False):
        if args.save:
            raise OptionError("--save keeps bench results (hwkit.bench); --generate results are not saved in the "
                              "database: write them with --json")
        warnings.warn(f"{SAVE_ENV} is set, but --generate results are not saved in the results database; "
                      "write them with --json", stacklevel=2)
        return
    connect(args.db).close()


def save_after_measuring(args: argparse.Namespace, data: dict[str, Any]) -> list[HwkitError]:
    """Save a bench's result dict when asked; the error, if any, for the caller to report after the
    table (its files are written before: a failed save loses nothing measured)."""
    if not saving(args):
        return []
    try:
        run = save_result(data, args.db)
    except HwkitError as e:
        return [e]
    stderr.print(f"saved run {run.id} in {database_path(args.db)}", highlight=False, markup=False, soft_wrap=True)
    return []
