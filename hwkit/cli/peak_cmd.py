"""``hwkit peak``: measure (once, then cached) the matmul peak per precision used for "% of peak"."""

from __future__ import annotations

import argparse

from hwkit.cli.common import precision_list, stdout, whole
from hwkit.measure.peak import UNITS, peak_flops, peak_reason
from hwkit.measure.settings import default_threads


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("peak", help="measure and cache the device's matrix-multiply peak per precision")
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="which device (%(default)s)")
    parser.add_argument("--threads", type=whole(1), help="CPU threads (default: physical cores, as bench uses)")
    parser.add_argument("--precision", type=precision_list, default=tuple(UNITS), metavar="P[,P…]",
                        help=f"precisions to measure (default: all, {','.join(UNITS)}); int8 counts integer ops (GOP/s)")
    parser.add_argument("--refresh", action="store_true", help="measure again instead of reading the cache")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    threads = args.threads if args.threads is not None else default_threads()
    for precision in args.precision:
        figure = peak_flops(args.device, precision, threads, refresh=args.refresh)
        if figure is None:  # a device without the instructions has no peak: "–", never another precision's
            why = peak_reason(args.device, precision) or f"this {args.device} has no {precision} matmul kernels"
            stdout.print(f"{precision:>4}: – ({why})", highlight=False, markup=False)
            continue
        stdout.print(f"{precision:>4}: {figure['gflops']:.1f} {UNITS[precision]} matmul on {figure['device']} "
                     f"({figure['size']}², {figure['threads']} threads, {figure['library']})", highlight=False, markup=False)
    return 0
