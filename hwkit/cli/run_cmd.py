"""``hwkit run MODEL -b BACKEND``: one inference on generated inputs, outputs summarised."""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.markup import escape
from rich.table import Table

from hwkit.api import compile, open_model
from hwkit._files import atomic_write, check_writable
from hwkit.cli.common import add_model_arguments, input_files, parse_dims, parse_options, parse_shapes, stdout
from hwkit.model.npz import load_inputs, save_arrays
from hwkit.model.specs import check_outputs
from hwkit.report.format import format_time


def _summary(array: np.ndarray) -> list[str]:
    """min, max, mean and the first values of an array, for the outputs table."""
    numeric = array.astype(np.float64) if array.size and (array.dtype.kind in "biuf" or array.dtype.name == "bfloat16") else None
    stats = [f"{numeric.min():.4g}", f"{numeric.max():.4g}", f"{numeric.mean():.4g}"] if numeric is not None else ["-"] * 3
    first = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in array.ravel()[:4].tolist())
    return [*stats, first]


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="run one inference and summarise the outputs")
    parser.add_argument("model", help="an .onnx file or a built-in model (mlp, cnn, encoder, decoder)")
    parser.add_argument("-b", "--backend", default="onnxruntime", help="BACKEND or BACKEND:DEVICE")
    parser.add_argument("-o", "--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a backend option, e.g. threads=2 (repeatable)")
    parser.add_argument("--inputs", metavar="FILE.npz", help="use these inputs instead of generated ones")
    parser.add_argument("--save", metavar="FILE.npz", help="write the outputs to an .npz file")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.save:
        check_writable(args.save)
    model = open_model(args.model)
    if args.save:
        check_writable(args.save, input_files(model, args.inputs))  # never write over what is read
    if args.inputs:
        inputs = load_inputs(args.inputs)
    else:
        inputs = model.make_inputs(parse_shapes(args.shape), parse_dims(args.dim), seed=args.seed)
    with compile(model, args.backend, **parse_options(args.option, per_backend=False)) as exe:
        start = time.perf_counter()
        outputs = exe.run(inputs)
        elapsed = time.perf_counter() - start
    check_outputs(model.outputs, outputs, args.backend, model.inputs, inputs)  # a plugin's bug, named
    if args.save:  # before printing: a reader that closes stdout early (| head) loses nothing
        atomic_write(args.save, save_arrays(outputs))
    table = Table(title=escape(f"{model.name} on {args.backend} ({format_time(elapsed)}, first run)"))  # names literal
    for column in ("output", "dtype", "shape", "min", "max", "mean", "first values"):
        table.add_column(column)
    for name, value in outputs.items():
        if value is None:  # an absent optional output
            table.add_row(escape(name), "-", "None", "-", "-", "-", "")
            continue
        items = value if isinstance(value, list) else [value]
        for index, array in enumerate(items):
            label = f"{name}[{index}]" if isinstance(value, list) else name
            table.add_row(escape(label), array.dtype.name, "x".join(map(str, array.shape)) or "scalar", *_summary(array))
    if any(isinstance(v, list) and not v for v in outputs.values()):
        stdout.print("(an empty sequence output has no rows)", highlight=False)
    stdout.print(table)
    return 0
