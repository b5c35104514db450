"""``hwkit bench MODEL --generate`` and ``hwkit check MODEL --generate``: greedy generation with a
KV cache (docs/generation.md). bench_cmd and check_cmd add these arguments and hand over here."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator

from hwkit._files import check_writable
from hwkit.api import open_model
from hwkit.cli.common import (
    EXIT_BAD_INPUT,
    backend_error,
    check_exit_code,
    exit_code_of_signal,
    input_files,
    parse_options,
    parse_sizes,
    print_errors,
    print_whole,
    require_matplotlib,
    split_list,
    stderr,
    stdout,
    whole,
    write_files,
)
from hwkit.errors import OptionError
from hwkit.generate.bench import bench_generate
from hwkit.generate.compare import check_generate
from hwkit.generate.settings import GenerateSettings

DEFAULTS = GenerateSettings()
# bench's single-pass flags that mean nothing for generation: refused rather than ignored.
NOT_FOR_GENERATE = {"min_time": "--min-time", "min_iters": "--min-iters", "max_time": "--max-time",
                    "target_ci": "--target-ci", "warmup_time": "--warmup-time", "input_sets": "--input-sets",
                    "warmup": "--warmup", "csv": "--csv", "shape": "--shape", "dim": "--dim", "inputs": "--inputs",
                    "bisect": "--bisect", "seeds": "--seeds", "calibration": "--calibration"}


def add_generate_arguments(parser: argparse.ArgumentParser, check: bool = False) -> None:
    """--generate, --prompt, --new, --runs (bench) and --batch (check; bench has its own)."""
    parser.set_defaults(generate_parser=parser)  # its defaults tell a flag the user gave from one left alone
    group = parser.add_argument_group("generation (--generate; docs/generation.md)")
    group.add_argument("--generate", action="store_true",
                       help="greedy generation with a KV cache: time to first token, tokens/s"
                            + (" (check: the same tokens?)" if check else ""))
    group.add_argument("--prompt", metavar="N[,N…]", help=f"prompt lengths in tokens (default {DEFAULTS.prompts[0]}; "
                       "a list plots time to first token against prompt length)")
    group.add_argument("--new", type=whole(1), default=DEFAULTS.new,
                       help="tokens to generate, at least 1: --new 1 measures the prefill alone (default %(default)s)")
    if check:
        group.add_argument("--batch", metavar="N[,N…]", help="batch sizes (default 1)")
    else:
        group.add_argument("--runs", type=whole(1), default=DEFAULTS.runs,
                           help="timed generations after one warm-up (default %(default)s)")
        group.add_argument("--numpy-cache", action="store_true",
                           help="feed the cache back as numpy through execute, even where the backend keeps it natively")


def _settings(args: argparse.Namespace, check: bool) -> GenerateSettings:
    given = [flag for name, flag in NOT_FOR_GENERATE.items()
             if getattr(args, name, None) not in (None, False, [], args.generate_parser.get_default(name))]
    if given:
        raise OptionError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply with --generate; "
                          "generation takes --prompt, --new, --batch" + ("" if check else ", --runs"))
    precisions = [args.precision] if isinstance(args.precision, str) else list(args.precision)
    if precisions != ["fp32"]:
        raise OptionError(f"--generate runs fp32 only for now (got --precision {','.join(precisions)}); "
                          "bench the precisions of single passes without --generate (docs/generation.md)")
    return GenerateSettings(
        prompts=parse_sizes(args.prompt, "--prompt", "32,128") or tuple(DEFAULTS.prompts), new=args.new,
        batches=parse_sizes(args.batch, "--batch", "1,4") or ((1,) if check else tuple(DEFAULTS.batches)),
        runs=getattr(args, "runs", DEFAULTS.runs), seed=args.seed, threads=args.threads,
        options=parse_options(args.option, per_backend=True), isolation=not args.no_isolation,
        timeout=args.timeout, native=not getattr(args, "numpy_cache", False),
    )


@contextlib.contextmanager
def _status() -> Iterator[Callable[[str, str, float], None]]:
    """One transient status line on a terminal's stderr (which backend, which row); nothing in
    a log file or a pipe."""
    if not stderr.is_terminal:
        yield lambda *_: None
        return
    with stderr.status("generating …") as status:
        yield lambda backend, phase, _fraction: status.update(f"{backend}: {phase}")


def run_bench(args: argparse.Namespace) -> int:
    outputs = {kind: getattr(args, kind) for kind in ("json", "markdown", "plot") if getattr(args, kind, None)}
    for path in outputs.values():
        check_writable(path)
    if args.plot:
        require_matplotlib()
    settings = _settings(args, check=False)
    model = open_model(args.model)
    for path in outputs.values():
        check_writable(path, input_files(model))
    with _status() as update:
        result = bench_generate(model, split_list(args.backends), settings, progress=update, reference=args.reference)
    unwritten = write_files({"json": result.to_json, "markdown": result.to_markdown, "plot": result.plot}, outputs)
    print_whole(result.table())
    rows = len(result.results)
    stdout.print(f"{rows} row{'s' if rows != 1 else ''} in {result.elapsed_s:.1f} s; tokens compared with "
                 f"{result.reference} ({result.reference_note})", highlight=False)
    print_errors(unwritten)
    if result.interrupted:
        return exit_code_of_signal(result.interrupted_by or "SIGINT")
    failed = [r for r in result.results if r.status != "ok"]
    print_errors(backend_error(r.backend, r.error) for r in failed)
    return EXIT_BAD_INPUT if failed or unwritten else 0


def run_check(args: argparse.Namespace) -> int:
    outputs = {"json": args.json} if args.json else {}
    for path in outputs.values():
        check_writable(path)
    settings = _settings(args, check=True)
    model = open_model(args.model)
    for path in outputs.values():
        check_writable(path, input_files(model))  # never write over the model or its data
    with _status():
        report = check_generate(model, split_list(args.backends), args.reference, settings, args.atol, args.rtol)
    unwritten = write_files({"json": report.to_json}, outputs)  # a file that cannot be written costs no table
    print_whole(report.table())
    print_errors(unwritten)
    failed = [r for r in report.results if r.status != "ok"]
    code = check_exit_code(report.passed, report.failures(), failed)
    return EXIT_BAD_INPUT if unwritten and code == 0 else code
