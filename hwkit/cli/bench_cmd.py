"""``hwkit bench [MODEL]``: every chosen backend on the same graph and inputs, one table."""

from __future__ import annotations

import argparse

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from hwkit.bench import BenchSettings, bench
from hwkit.cache import check_writable
from hwkit.cli.common import add_model_arguments, parse_dims, parse_options, parse_shapes, split_list, stderr, stdout
from hwkit.zoo import DEFAULT_MODEL

EXIT_BACKEND_FAILED = 1
EXIT_NOTHING_MEASURED = 2
EXIT_INTERRUPTED = 130


def add_parser(sub: argparse._SubParsersAction) -> None:
    defaults = BenchSettings()
    parser = sub.add_parser("bench", help="measure latency on every backend and compare outputs")
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                        help=f"an .onnx file or a built-in model (default: {DEFAULT_MODEL})")
    parser.add_argument("-b", "--backends", help="comma list of BACKEND[:DEVICE] (default: every available one)")
    parser.add_argument("--threads", type=int, help="intra-op threads for every backend (default: physical cores)")
    parser.add_argument("--min-time", type=float, default=defaults.min_time, help="timed seconds at least (%(default)s)")
    parser.add_argument("--min-iters", type=int, default=defaults.min_iters, help="timed runs at least (%(default)s)")
    parser.add_argument("--max-time", type=float, default=defaults.max_time, help="stop timing after this many seconds (%(default)s)")
    parser.add_argument("--warmup", type=int, default=defaults.warmup_iters, help="warm-up runs at least (%(default)s)")
    parser.add_argument("--warmup-time", type=float, default=defaults.warmup_time, help="warm-up seconds at least (%(default)s)")
    parser.add_argument("--input-sets", type=int, default=defaults.input_sets, help="seeded input sets to rotate (%(default)s)")
    parser.add_argument("-o", "--option", action="append", default=[], metavar="BACKEND.NAME=VALUE",
                        help="a backend option, e.g. openvino.precision=f16 (repeatable)")
    parser.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.json:
        check_writable(args.json)  # fail before measuring, not after
    settings = BenchSettings(
        warmup_iters=args.warmup, warmup_time=args.warmup_time, min_iters=args.min_iters,
        min_time=args.min_time, max_time=args.max_time, threads=args.threads, seed=args.seed,
        input_sets=args.input_sets, shapes=parse_shapes(args.shape), dims=parse_dims(args.dim),
        options=parse_options(args.option, per_backend=True),
    )
    with _progress() as (update):
        result = bench(args.model, split_list(args.backends), settings, progress=update)
    stdout.print(result.table())
    if args.json:
        result.to_json(args.json)
        stderr.print(f"wrote {args.json}", highlight=False)
    if result.interrupted:
        return EXIT_INTERRUPTED
    failed = [r for r in result.results if not r.ok]
    for record in failed:
        stderr.print(f"hwkit: error: {record.backend}: {record.error}", highlight=False, markup=False, soft_wrap=True)
    if failed:
        return EXIT_NOTHING_MEASURED if len(failed) == len(result.results) else EXIT_BACKEND_FAILED
    return 0


class _progress:
    """A transient progress bar on stderr, one line per backend."""

    def __enter__(self):  # type: ignore[no-untyped-def]
        self.bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn(),
                            console=stderr, transient=True)
        self.tasks: dict[str, TaskID] = {}
        self.bar.__enter__()
        return self.update

    def update(self, backend: str, phase: str, fraction: float) -> None:
        if backend not in self.tasks:
            self.tasks[backend] = self.bar.add_task(backend, total=1.0)
        self.bar.update(self.tasks[backend], completed=fraction, description=f"{backend}: {phase}")

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)
