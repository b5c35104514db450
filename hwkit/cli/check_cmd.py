"""``hwkit check [MODEL]``: do the backends agree? Every chosen backend against a reference on
the same inputs; with ``--bisect -b A,B``, the first node where two backends part ways."""

from __future__ import annotations

import argparse
import dataclasses

from hwkit._files import check_writable
from hwkit.parity.check import CheckSettings, check
from hwkit.cli.common import (
    EXIT_MISMATCH,
    add_run_arguments,
    check_exit_code,
    parse_dims,
    parse_options,
    parse_shapes,
    seconds,
    print_whole,
    split_list,
    stderr,
)
from hwkit.cli import generate_cmd
from hwkit.errors import OptionError
from hwkit.parity.tolerance import TOLERANCES
from hwkit.runner.plan import DEFAULT_REFERENCE



def add_parser(sub: argparse._SubParsersAction) -> None:
    defaults = CheckSettings()
    profiles = "; ".join(f"{t.profile}: atol {t.atol:g}, rtol {t.rtol:g}" for t in TOLERANCES.values())
    parser = sub.add_parser("check", help="compare every backend's outputs with a reference backend's",
                            description=f"Tolerance profiles ({profiles}). Exit 0: all agree; 1: a mismatch (every "
                                        "backend ran, one disagrees; --bisect: a node differs); 2: a bad input or "
                                        "setting, or a backend that failed, crashed or timed out (it has no outputs "
                                        "to compare; 2 even when another disagrees too); 130/143/129: stopped by "
                                        "Ctrl-C/SIGTERM/SIGHUP; 141: stdout was closed early.")
    add_run_arguments(parser, threads_default="each runtime's", reference="run even when not chosen")
    parser.add_argument("--bisect", action="store_true",
                        help="find the first node whose output differs between two backends (-b A,B)")
    parser.add_argument("--inputs", metavar="FILE.npz", help="compare on these inputs instead of generated ones")
    parser.add_argument("--seeds", type=int, default=defaults.seeds,
                        help="generated input sets, seeds SEED.. (default %(default)s; --bisect uses one)")
    parser.add_argument("--atol", type=float, help="absolute tolerance (overrides the profile's)")
    parser.add_argument("--rtol", type=float, help="relative tolerance (overrides the profile's)")
    parser.add_argument("--timeout", type=seconds(), default=defaults.timeout,
                        help="seconds one backend may take before it is stopped (%(default)s)")
    parser.add_argument("--no-isolation", action="store_true",
                        help="run every backend in this process (faster start; a crash ends the check)")
    parser.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    generate_cmd.add_generate_arguments(parser, check=True)  # --generate: hwkit/cli/generate_cmd.py
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.generate:
        return generate_cmd.run_check(args)
    if args.json:
        check_writable(args.json)  # fail before running, not after
    settings = CheckSettings(
        seeds=args.seeds, seed=args.seed, inputs=args.inputs, precision=args.precision, calibration=args.calibration,
        atol=args.atol,
        rtol=args.rtol, threads=args.threads, shapes=parse_shapes(args.shape), dims=parse_dims(args.dim),
        options=parse_options(args.option, per_backend=True), isolation=not args.no_isolation,
        timeout=args.timeout,
    )
    backends = split_list(args.backends)
    if args.bisect:
        return _bisect(args, backends, settings)
    report = check(args.model, backends, args.reference, settings)
    if args.json:  # before printing: a reader that closes stdout early (| head) loses nothing
        report.to_json(args.json)
        stderr.print(f"wrote {args.json}", highlight=False, markup=False)
    print_whole(report.table())
    # A backend that did not run is an error (exit 2), not a mismatch: it has no outputs to disagree.
    failed = [r for r in report.results if r.status not in ("ok", "unsupported")]  # unsupported: a row, no error
    ran = dataclasses.replace(report, results=[r for r in report.results if r.status == "ok"])
    return check_exit_code(report.passed, ran.failures(), failed)


def _bisect(args: argparse.Namespace, backends: list[str] | None, settings: CheckSettings) -> int:
    from hwkit.parity.bisect import bisect

    if not backends or len(backends) > 2 or (len(backends) == 1 and backends[0] == (args.reference or DEFAULT_REFERENCE)):
        raise OptionError("--bisect compares two backends: give -b A,B, e.g. -b onnxruntime,openvino")
    # One name: it is compared with the reference; two: the first is the reference side.
    a, b = (args.reference or DEFAULT_REFERENCE, backends[0]) if len(backends) == 1 else backends
    # Each round's backends run in child processes unless --no-isolation: a crash costs one line.
    report = bisect(args.model, a, b, settings, isolated_rounds=settings.isolation)
    if args.json:  # before printing, as above
        report.to_json(args.json)
        stderr.print(f"wrote {args.json}", highlight=False, markup=False)
    print_whole(report.table())
    if report.found:
        # Exit 1 either way: a tensor differs beyond tolerance; the line says whether it shows.
        reach = {True: "; the graph's outputs still agree within tolerance on this input set, so hwkit check "
                       "passes: the difference does not reach them",
                 False: "; the graph's outputs differ too", None: ""}[report.outputs_agree]
        stderr.print(f"hwkit: {a} and {b} first differ at node '{report.node}' ({report.op_type}){reach}",
                     highlight=False, markup=False, soft_wrap=True)
        return EXIT_MISMATCH
    return 0
