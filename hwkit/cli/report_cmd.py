"""``hwkit report (RESULT.json | --run ID) --html out.html``: one self-contained HTML page of a bench
result, to share or archive (it works offline)."""

from __future__ import annotations

import argparse

from hwkit._files import atomic_write, check_writable
from hwkit.cli.common import require_matplotlib, stderr, whole
from hwkit.cli.store_args import add_db_argument
from hwkit.report.html import bench_html
from hwkit.report.schema import load_result
from hwkit.store.database import database_path
from hwkit.store.runs import load_run


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="write a bench result as one self-contained HTML page",
                            description="Write a bench result (a hwkit bench --json file, or a saved run) as one HTML "
                                        "file: the sortable table, the plots, the machine and the method, with "
                                        "nothing linked, so it opens offline on a phone or a wide screen.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("result", nargs="?", metavar="RESULT.json", help="a hwkit bench --json result")
    source.add_argument("--run", type=whole(1), metavar="ID", help="a saved run (ids: hwkit history)")
    parser.add_argument("--html", required=True, metavar="PATH.html", help="the page to write")
    add_db_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_writable(args.html, [args.result])  # before reading anything, and never over the result itself
    require_matplotlib("report --html (its plots)")
    if args.run is not None:
        data, source = load_run(args.run, args.db), f"saved run {args.run} in {database_path(args.db)}"
    else:
        data, source = load_result(args.result), args.result
    atomic_write(args.html, bench_html(data, source))
    stderr.print(f"wrote {args.html}", highlight=False, markup=False, soft_wrap=True)
    return 0


