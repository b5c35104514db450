"""``hwkit compare OLD.json NEW.json``: per backend, the change and whether it is significant.
Exit code 1 when something regressed beyond ``--threshold`` (for CI)."""

from __future__ import annotations

import argparse

from rich.table import Table

from hwkit.cli.common import stderr, stdout
from hwkit.report.diff import compare_results, load_result
from hwkit.report.tables import format_time

EXIT_REGRESSED = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("compare", help="compare two bench --json results; exit 1 on a regression")
    parser.add_argument("old", help="the baseline result (hwkit bench --json)")
    parser.add_argument("new", help="the result to judge")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="a slowdown larger than this fraction, outside noise, is a regression (%(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    old, new = load_result(args.old), load_result(args.new)
    changes, gone, added = compare_results(old, new)
    if old["model"]["sha256"] != new["model"]["sha256"]:
        stderr.print("hwkit: warning: the two results are of different model graphs (sha256 differs)", highlight=False)
    table = Table(title=f"hwkit compare (regression: > {args.threshold:.0%} slower and outside noise)")
    for column in ("model", "backend", "device", "batch", "old median", "new median", "change", "verdict"):
        table.add_column(column, justify="right" if column in ("batch", "old median", "new median", "change") else "left")
    for c in changes:
        verdict = c.verdict(args.threshold)
        style = "red" if verdict == "REGRESSED" else "green" if verdict == "faster" else ""
        table.add_row(c.model, c.backend, c.device, str(c.batch), format_time(c.old_median), format_time(c.new_median),
                      f"{(c.ratio - 1) * 100:+.1f}%", f"[{style}]{verdict}[/]" if style else verdict)
    stdout.print(table)
    for label, keys in (("only in OLD", gone), ("only in NEW", added)):
        for key in keys:
            stdout.print(f"{label}: {' '.join(map(str, key))}", highlight=False)
    regressed = [c for c in changes if c.regressed(args.threshold)]
    return EXIT_REGRESSED if regressed else 0
