"""Results that are kept: measure without any runtime (hwkit's fake backends), save the result as
JSON, read it back, and render it exactly as the fresh one; then diff two runs.

    python examples/saved_results.py [FOLDER]     # writes FOLDER/before.json, FOLDER/after.json

The fake backends (hwkit.testing.backends) are how a CI script or a dashboard that drives hwkit
is tested without installing onnxruntime, OpenVINO or torch.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from onnx import TensorProto, helper
from rich.console import Console

import hwkit
from hwkit.report import diff, tables
from hwkit.report.schema import load_result
from hwkit.testing.backends import fake_backends


def tiny_model() -> hwkit.Model:
    """y = relu(x + 1) over a dynamic batch: a graph any backend runs."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["s"]), helper.make_node("Relu", ["s"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return hwkit.Model.load(proto)


def main(folder: str | None = None) -> None:
    out = Path(folder or tempfile.mkdtemp(prefix="hwkit-example-"))
    console = Console(width=160)
    quick = {"min_time": 0.05, "min_iters": 10, "warmup_iters": 2, "target_ci": None, "isolation": False,
             "efficiency": False, "dims": {"batch": 4}}
    with fake_backends():  # "timed" sleeps a known time per run: 2 ms, then 3 ms
        before = hwkit.bench(tiny_model(), ["fake", "timed"], reference="fake",
                             options={"timed": {"delay": 0.002}}, **quick)
        after = hwkit.bench(tiny_model(), ["fake", "timed"], reference="fake",
                            options={"timed": {"delay": 0.003}}, **quick)
    before.to_json(str(out / "before.json"))
    after.to_json(str(out / "after.json"))
    saved = load_result(out / "before.json")
    console.print(tables.bench_table(saved))  # the same table as before.table()
    changes, _, _ = diff.compare_results(saved, load_result(out / "after.json"))
    console.print(tables.compare_table(changes, threshold=0.05))
    for change in changes:
        console.print(f"{change.backend}: {change.verdict(0.05)}", highlight=False)


if __name__ == "__main__":
    main(*sys.argv[1:2])
