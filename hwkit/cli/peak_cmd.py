"""``hwkit peak``: measure (once, then cached) the fp32 matmul peak used for "% of peak"."""

from __future__ import annotations

import argparse

from hwkit.measure.settings import default_threads
from hwkit.cli.common import stdout, whole
from hwkit.measure.peak import peak_gflops


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("peak", help="measure and cache the device's fp32 matrix-multiply peak")
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="which device (%(default)s)")
    parser.add_argument("--threads", type=whole(1), help="CPU threads (default: physical cores, as bench uses)")
    parser.add_argument("--refresh", action="store_true", help="measure again instead of reading the cache")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    figure = peak_gflops(args.device, args.threads if args.threads is not None else default_threads(), refresh=args.refresh)
    stdout.print(f"{figure['device']}: {figure['gflops']:.1f} GFLOP/s fp32 matmul "
                 f"({figure['size']}², {figure['threads']} threads, {figure['library']})", highlight=False, markup=False)
    return 0
