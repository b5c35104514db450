"""``hwkit compare OLD.json NEW.json``: per backend, the change and whether it is significant.
Exit code 1 when something regressed beyond ``--threshold`` (for CI)."""

from __future__ import annotations

import argparse

from hwkit.cli.common import stderr, stdout
from hwkit.report.diff import compare_results
from hwkit.report.schema import load_result
from hwkit.report.tables import compare_table

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
    table = compare_table(changes, args.threshold)
    stdout.print(table)
    for label, keys in (("only in OLD", gone), ("only in NEW", added)):
        for key in keys:
            stdout.print(f"{label}: {' '.join(map(str, key))}", highlight=False)
    regressed = [c for c in changes if c.regressed(args.threshold)]
    return EXIT_REGRESSED if regressed else 0
