"""``hwkit compare --last [RESULT.json]``: the two results to compare when one of them is the
previous saved run (of the same model graph, backend and machine) rather than a file."""

from __future__ import annotations

import argparse
from typing import Any

from hwkit.cli.common import stderr
from hwkit.cli.store_args import add_db_argument
from hwkit.errors import OptionError
from hwkit.report.schema import load_result
from hwkit.store.runs import newest_run, previous_run


def add_last_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--last", action="store_true",
                        help="compare RESULT.json (or, without it, the newest saved run) with the previous saved run "
                             "of the same model, backend and machine (hwkit bench --save)")
    add_db_argument(parser)


def results_to_compare(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(old, new) result dicts: two files, or with ``--last`` a saved run and the one after it.

    Raises:
        OptionError: the wrong number of files for the mode.
    """
    if not args.last:
        if args.new is None:
            raise OptionError("compare takes two results, OLD.json NEW.json, or --last [RESULT.json] to compare with "
                              "the previous saved run")
        return load_result(args.old), load_result(args.new)
    if args.new is not None:
        raise OptionError("compare --last takes at most one result (RESULT.json); it finds the run to compare with "
                          "in the results database")
    if args.old is None:
        new_id, new = newest_run(args.db)
        what = f"the newest saved run ({new_id})"
    else:
        new, what = load_result(args.old), args.old
    old_id, old = previous_run(new, args.db)
    stderr.print(f"comparing {what} with the previous saved run ({old_id})", highlight=False, markup=False, soft_wrap=True)
    return old, new
