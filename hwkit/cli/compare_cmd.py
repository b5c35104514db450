"""``hwkit compare OLD.json NEW.json``: per backend, the change and whether it is significant.
Exit code 1 when something regressed beyond ``--threshold`` (for CI); 2 when the two cannot be
compared (different model graphs or input shapes, no measured row in common, a malformed file)."""

from __future__ import annotations

import argparse

from hwkit.cli.common import seconds, stderr, stdout
from hwkit.cli.compare_last import add_last_arguments, results_to_compare
from hwkit.errors import ResultError
from hwkit.report.diff import compare_results, differences, nothing_in_common, refusal
from hwkit.report.tables import compare_table

EXIT_REGRESSED = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("compare", help="compare two bench --json results; exit 1 on a regression")
    parser.add_argument("old", nargs="?", help="the baseline result (hwkit bench --json)")
    parser.add_argument("new", nargs="?", help="the result to judge (same model graph and input shapes)")
    add_last_arguments(parser)
    parser.add_argument("--threshold", type=seconds(0), default=0.05,
                        help="a slowdown larger than this fraction, outside noise, is a regression (%(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    old, new = results_to_compare(args)  # two files, or --last: a saved run and the one before
    why = refusal(old, new)
    if why:
        raise ResultError(why)
    changes, gone, added = compare_results(old, new)
    if not changes:
        raise ResultError(nothing_in_common(gone, added))
    for difference in differences(old, new):
        stderr.print(f"hwkit: warning: OLD and NEW differ in {difference}; the change may come from it",
                     highlight=False, markup=False, soft_wrap=True)
    table = compare_table(changes, args.threshold)
    stdout.print(table)
    for label, keys in (("only in OLD", gone), ("only in NEW", added)):
        for key in keys:
            stdout.print(f"{label}: {' '.join(map(str, key))}", highlight=False, markup=False)
    regressed = [c for c in changes if c.regressed(args.threshold)]
    return EXIT_REGRESSED if regressed else 0
