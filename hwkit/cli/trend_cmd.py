"""``hwkit trend MODEL -b BACKEND [--plot out.png]``: one backend's median and 95% CI over the saved runs."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table
from rich.text import Text

from hwkit._files import atomic_write, check_writable
from hwkit.cli.common import print_whole, require_matplotlib, stderr
from hwkit.cli.store_args import add_db_argument
from hwkit.errors import ResultError
from hwkit.report.format import format_time
from hwkit.store.database import database_path
from hwkit.store.runs import trend_points


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("trend", help="one backend's median latency over the saved runs of a model",
                            description="One backend's median latency and its 95%% CI in every saved run of MODEL, "
                                        "oldest first, one series per model graph, machine, device, batch and precision.")
    parser.add_argument("model", metavar="MODEL", help="the model's name as bench showed it, or the start of its sha256")
    parser.add_argument("-b", "--backend", required=True, metavar="NAME[:DEVICE]", help="the backend to follow")
    parser.add_argument("--plot", metavar="PATH.png", help="also plot the medians with their CIs over time")
    add_db_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.plot:
        check_writable(args.plot)
        require_matplotlib()
    points = trend_points(args.model, args.backend, args.db)
    if not points:
        raise ResultError(f"no saved run of {args.model} measured {args.backend} in {database_path(args.db)}; "
                          f"list what is saved with hwkit history {args.model}")
    for point in points:
        point["series"] = series_label(point, points)
    if args.plot:
        from hwkit.report.figures import trend_png

        atomic_write(args.plot, trend_png(points, f"{args.model}: {args.backend}"))
        stderr.print(f"wrote {args.plot}", highlight=False, markup=False, soft_wrap=True)
    print_whole(trend_table(points, f"{args.model} on {args.backend}, saved runs oldest first"))
    return 0


def series_label(point: dict[str, Any], points: list[dict[str, Any]]) -> str:
    """What tells this point's series from the others: only the fields that vary among ``points``."""
    fields = ("model_sha256", "machine_key", "device", "batch", "precision")
    varying = [f for f in fields if len({p[f] for p in points}) > 1]
    parts = [f"{p[:12]}" if f == "model_sha256" else f"batch {p}" if f == "batch" else str(p)
             for f, p in ((f, point[f]) for f in varying)]
    return " ".join(parts) or f"{point['device']} batch {point['batch']} {point['precision']}"


def trend_table(points: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=Text(title), title_justify="left")
    for column in ("run", "saved (UTC)", "series", "median", "95% CI", "vs first", "hwkit", "machine"):
        table.add_column(column, justify="right" if column in ("run", "median", "vs first") else "left")
    first: dict[str, float] = {}
    for p in points:
        base = first.setdefault(p["series"], p["median_s"])
        ratio = f"{p['median_s'] / base:.3f}x" if base else "-"
        ci = (f"{format_time(p['ci_low_s'])} – {format_time(p['ci_high_s'])}"
              if p["ci_low_s"] is not None and p["ci_high_s"] is not None else "- (too few runs)")
        cells = (str(p["run_id"]), p["saved_utc"].replace("T", " ").removesuffix("+00:00"), p["series"],
                 format_time(p["median_s"]), ci, ratio, p["hwkit_version"] or "-", p["machine"])
        table.add_row(*map(Text, cells))
    return table
