"""``hwkit merge A.json B.json …``: results of one model from several machines, one comparison
with a machine column and "vs fastest" across machines. Exit code 2 when the results are not of
the same model and inputs (one line says what differs), or a file cannot be read or written."""

from __future__ import annotations

import argparse

from hwkit._files import check_writable
from hwkit.cli.common import EXIT_BAD_INPUT, print_errors, print_whole, require_matplotlib, stdout, write_files
from hwkit.fleet.merge import machine_name, merge_results
from hwkit.fleet.result import FleetResult
from hwkit.report.schema import load_result


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "merge", help="combine bench --json results of one model from several machines",
        description="Combine hwkit bench --json results of the same model (same sha256, seed and input shapes) "
                    "measured on different machines into one table with a machine column; vs fastest is "
                    "computed across machines. A single-machine file names its machine by the file's stem "
                    "(laptop.json: laptop); a merged file keeps its machines. Exit 2: the results differ in "
                    "model or inputs, or a file cannot be read or written.")
    parser.add_argument("results", nargs="+", metavar="RESULT.json", help="hwkit bench --json (or merge --json) files")
    parser.add_argument("--json", metavar="PATH", help="write the merged result (a bench result with a machine per row)")
    parser.add_argument("--csv", metavar="PATH", help="write one CSV row per machine, backend and batch size")
    parser.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    parser.add_argument("--plot", metavar="PATH.png", help="plot latency per machine and backend")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    outputs = {kind: getattr(args, kind) for kind in ("json", "csv", "markdown", "plot") if getattr(args, kind)}
    for path in outputs.values():
        check_writable(path, args.results)  # never write over one of the results being merged
    if args.plot:
        require_matplotlib()
    result = FleetResult(merge_results([(machine_name(path), load_result(path)) for path in args.results]))
    unwritten = write_files({"json": result.to_json, "csv": result.to_csv, "markdown": result.to_markdown,
                             "plot": result.plot}, outputs)
    print_whole(result.table())
    stdout.print(result.summary_line(), highlight=False, markup=False)
    print_errors(unwritten)
    return EXIT_BAD_INPUT if unwritten else 0
