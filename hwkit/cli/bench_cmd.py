"""``hwkit bench [MODEL]``: every chosen backend on the same graph and inputs, one table."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from hwkit.api import open_model
from hwkit.measure.bench import bench
from hwkit.measure.settings import BenchSettings
from hwkit._files import check_writable
from hwkit.cli.common import (
    EXIT_BAD_INPUT,
    add_run_arguments,
    backend_error,
    exit_code_of_signal,
    input_files,
    parse_dims,
    parse_options,
    parse_shapes,
    parse_sizes,
    seconds,
    print_errors,
    print_whole,
    require_matplotlib,
    split_list,
    stderr,
    stdout,
    whole,
    write_files,
)
from hwkit.cli.store_args import add_save_arguments, open_before_measuring, save_after_measuring
from hwkit.cli import generate_cmd
from hwkit.cli import cluster_args
from hwkit.errors import OptionError



def add_parser(sub: argparse._SubParsersAction) -> None:
    defaults = BenchSettings()
    parser = sub.add_parser(
        "bench", help="measure latency on every backend and compare outputs",
        description="Measure every chosen backend on the same graph and inputs, and compare their outputs. "
                    "Exit 0: every backend measured; 2: a bad input or setting, or a backend that failed, crashed, "
                    "timed out or returned outputs unlike the model's (after the table and every requested file); "
                    "130 (Ctrl-C), 143 (SIGTERM), 129 (SIGHUP): stopped, what was measured is printed and written; "
                    "141: stdout was closed early (| head), the files are written.")
    add_run_arguments(parser, threads_default="physical cores", reference="run once untimed when not chosen")
    parser.add_argument("--min-time", type=seconds(), default=defaults.min_time, help="timed seconds at least (%(default)s)")
    parser.add_argument("--min-iters", type=whole(1), default=defaults.min_iters, help="timed runs at least (%(default)s)")
    parser.add_argument("--max-time", type=seconds(), default=defaults.max_time, help="stop timing after this many seconds (%(default)s)")
    parser.add_argument("--target-ci", type=seconds(), default=defaults.target_ci,
                        help="keep timing until the median's 95%% CI is within this fraction (%(default)s; 0: off)")
    parser.add_argument("--warmup", type=whole(0), default=defaults.warmup_iters, help="warm-up runs at least (%(default)s)")
    parser.add_argument("--warmup-time", type=seconds(), default=defaults.warmup_time, help="warm-up seconds at least (%(default)s)")
    parser.add_argument("--input-sets", type=whole(1), default=defaults.input_sets, help="seeded input sets to rotate (%(default)s)")
    parser.add_argument("--batch", metavar="N[,N…]",
                        help="throughput mode: sweep these batch sizes over the dynamic batch dimension")
    parser.add_argument("--timeout", type=seconds(), default=defaults.timeout,
                        help="seconds one backend may take before it is stopped (%(default)s)")
    parser.add_argument("--no-isolation", action="store_true",
                        help="run every backend in this process (faster start; a crash ends the run)")
    parser.add_argument("--json", metavar="PATH", help="write the full result as JSON (schema hwkit.bench/2)")
    parser.add_argument("--csv", metavar="PATH", help="write one CSV row per backend and batch size")
    parser.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    parser.add_argument("--plot", metavar="PATH.png", help="plot latency with CI whiskers (and throughput vs batch; "
                        "with --precision, speed vs accuracy with the Pareto front)")
    add_save_arguments(parser)
    generate_cmd.add_generate_arguments(parser)  # --generate: hwkit/cli/generate_cmd.py
    cluster_args.add_cluster_argument(parser)  # --cluster: hwkit/cli/cluster_args.py
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    open_before_measuring(args)  # a corrupt or read-only results database fails before measuring
    cluster_args.refuse_what_a_cluster_cannot_run(args)
    if args.generate:
        return generate_cmd.run_bench(args)
    outputs = {kind: getattr(args, kind) for kind in ("json", "csv", "markdown", "plot") if getattr(args, kind)}
    for path in outputs.values():
        check_writable(path)  # fail before measuring (and before a large model is read), not after
    if args.plot:
        require_matplotlib()
    model = open_model(args.model)
    for path in outputs.values():
        check_writable(path, input_files(model))  # never write over the model or its data
    settings = BenchSettings(
        warmup_iters=args.warmup, warmup_time=args.warmup_time, min_iters=args.min_iters,
        min_time=args.min_time, max_time=args.max_time, threads=args.threads, seed=args.seed,
        input_sets=args.input_sets, shapes=parse_shapes(args.shape), dims=parse_dims(args.dim),
        options=parse_options(args.option, per_backend=True), batches=parse_sizes(args.batch, "--batch", "1,8,32"),
        isolation=not args.no_isolation, timeout=args.timeout, precisions=args.precision, calibration=args.calibration,
        target_ci=args.target_ci or None,
    )
    with _progress() as (update):
        result = cluster_args.bench_function(args, bench)(model, split_list(args.backends), settings,
                                                          progress=update, reference=args.reference)
    unwritten = write_files({"json": result.to_json, "csv": result.to_csv, "markdown": result.to_markdown,
                             "plot": result.plot}, outputs)  # files first: a reader that closes stdout early loses none
    unwritten += save_after_measuring(args, result.to_dict())  # after the files: a failed save loses nothing
    print_whole(result.table())
    stdout.print(result.summary_line(), highlight=False)
    print_errors(unwritten)
    if result.interrupted:
        return exit_code_of_signal(result.interrupted_by or "SIGINT")
    failed = [r for r in result.results if not r.ok and r.status != "unsupported"]  # unsupported: a row, no error
    print_errors(backend_error(record.backend, record.error) for record in failed)
    if failed or unwritten:
        return EXIT_BAD_INPUT  # after the table and every requested file: nothing measured is lost
    return 0


class _progress:
    """A transient progress bar on stderr, one line per backend. It starts with the first update,
    so an error before anything runs is the only line on stderr (no blank line left behind)."""

    def __enter__(self) -> Callable[[str, str, float], None]:
        self.bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn(),
                            console=stderr, transient=True)
        self.tasks: dict[str, TaskID] = {}
        self.started = False
        return self.update

    def update(self, backend: str, phase: str, fraction: float) -> None:
        if not stderr.is_terminal:  # a log file or a pipe: a progress bar there is only noise
            return
        if not self.started:
            self.bar.__enter__()
            self.started = True
        if backend not in self.tasks:
            self.tasks[backend] = self.bar.add_task(backend, total=1.0)
        self.bar.update(self.tasks[backend], completed=fraction, description=f"{backend}: {phase}")

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.bar.__exit__(None, None, None)
