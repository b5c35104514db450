"""``hwkit history [MODEL] [-b …]``: the saved runs, newest first, with their machines."""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text

from hwkit.cli.common import print_whole, split_list, stdout, whole
from hwkit.cli.store_args import add_db_argument
from hwkit.store.database import database_path
from hwkit.store.runs import list_runs


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("history", help="list the saved runs (hwkit bench --save), newest first",
                            description="List the runs saved in the results database, newest first: id, time, model, "
                                        "backends and the machine. Use an id with hwkit report --run ID.")
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="only this model: its name as bench showed it, or the start of its sha256")
    parser.add_argument("-b", "--backends", metavar="NAME[,NAME…]", help="only runs that measured one of these backends")
    parser.add_argument("-n", "--limit", type=whole(1), default=50, help="show at most this many runs (%(default)s)")
    add_db_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    runs = list_runs(args.model, split_list(args.backends) or (), args.db, limit=args.limit)
    where = database_path(args.db)
    if not runs:
        wanted = " matching " + " ".join(filter(None, [args.model, args.backends and f"-b {args.backends}"])) \
            if args.model or args.backends else ""
        stdout.print(f"no saved runs{wanted} in {where}; save one with hwkit bench --save", highlight=False,
                     markup=False)
        return 0
    table = Table(title=Text(f"saved runs in {where}"), title_justify="left")
    for column in ("id", "saved (UTC)", "model", "sha256", "backends", "machine", "key", "hwkit"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for saved in runs:
        cells = (str(saved.id), saved.saved_utc.replace("T", " ").removesuffix("+00:00"), saved.model_name,
                 saved.model_sha256[:12], saved.backends.replace(",", ", "), saved.machine, saved.machine_key,
                 saved.hwkit_version or "-")
        table.add_row(*map(Text, cells))  # names come from users and plugins: never markup
    print_whole(table)
    return 0
