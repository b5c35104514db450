"""The tensorflow and litert backends (hwkit-tensorflow, conversion by onnx2tf) against onnxruntime
on the built-in models and on real architectures: does each model convert, run and agree, how long
the conversion takes, and how fast it runs.

For every model: ``hwkit.bench`` with onnxruntime, tensorflow and litert (each backend in a
process of its own, the same seeded inputs, onnxruntime the reference), then ``hwkit.check`` with
the same three (three seeded input sets, the fp32 tolerance profile). One line per
(model, backend): converted? ran? agrees? the compile time (for tensorflow and litert: the onnx2tf
conversion, unless the other one of the two already cached it), the median, and the failure's
reason. The conversion cache starts empty (a fresh HWKIT_CACHE_DIR) unless ``--warm-cache``.

Real architectures are built from transformers configs with random weights (transformers: a
development dependency) and exported at batch 1 by ``Model.from_torch``: ResNet-50 and
MobileNetV2 at their real sizes (224x224 images), ViT-Base/16 and BERT-base widths with
``--layers`` encoder layers (default 2; the per-layer work is the real one), BERT at 128 tokens.

    python benchmarks/tensorflow_real.py
    python benchmarks/tensorflow_real.py --models cnn,resnet50 --seconds 1 --threads 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

BUILTIN = ("cnn", "mlp", "encoder")
REAL = ("resnet50", "mobilenetv2", "vit", "bert")
BACKENDS = ("onnxruntime", "tensorflow", "litert")


def real_architecture(name: str, layers: int) -> Any:
    """A transformers model from its config with random weights, its first output only, exported
    at batch 1."""
    import torch
    import transformers as tr
    from torch import nn

    from hwkit import Model

    class FirstOutput(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner.eval()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x, return_dict=False)[0]

    torch.manual_seed(0)
    image = torch.randn(1, 3, 224, 224)
    tokens = torch.randint(0, 1000, (1, 128))
    builders: dict[str, Callable[[], tuple[nn.Module, torch.Tensor]]] = {
        "resnet50": lambda: (tr.ResNetForImageClassification(tr.ResNetConfig()), image),
        "mobilenetv2": lambda: (tr.MobileNetV2ForImageClassification(tr.MobileNetV2Config()), image),
        "vit": lambda: (tr.ViTModel(tr.ViTConfig(num_hidden_layers=layers), add_pooling_layer=False), image),
        "bert": lambda: (tr.BertModel(tr.BertConfig(num_hidden_layers=layers), add_pooling_layer=False), tokens),
    }
    module, example = builders[name]()
    return Model.from_torch(FirstOutput(module), (example,), name=name)


def one_model(model: Any, seconds: float, threads: int) -> list[dict[str, Any]]:
    """One row per backend: bench, then check, of the same model."""
    import hwkit

    rows: dict[str, dict[str, Any]] = {b: {"backend": b, "converted": False, "ran": False, "agrees": None,
                                           "compile_s": None, "median_ms": None, "why": ""} for b in BACKENDS}
    bench = hwkit.bench(model, list(BACKENDS), reference="onnxruntime", threads=threads, min_time=seconds,
                        max_time=4 * seconds, min_iters=5, warmup_iters=2, efficiency=False)
    for record in bench.results:
        row = rows[record.backend.split(":")[0]]
        row["compile_s"] = record.compile_s
        row["converted"] = record.compile_s is not None
        if record.ok and record.summary is not None:
            row["ran"], row["median_ms"] = True, record.summary.median * 1e3
        else:
            row["why"] = " ".join(record.error.split())[:240]
    check = hwkit.check(model, list(BACKENDS), reference="onnxruntime", threads=threads)
    failures = check.failures()
    for result in [check.reference, *check.results]:
        row = rows[result.backend.split(":")[0]]
        row["agrees"] = result.passed and result.status in ("ok", "reference")
        if not row["agrees"] and not row["why"]:
            mine = [line for line in failures if line.startswith(row["backend"])]
            row["why"] = " ".join((mine[0] if mine else result.error).split())[:240]
    return list(rows.values())


def line(model: str, row: dict[str, Any]) -> str:
    def yes(value: bool | None) -> str:
        return "-" if value is None else "yes" if value else "NO"

    compile_s = "-" if row["compile_s"] is None else f"{row['compile_s']:.1f}"
    median = "-" if row["median_ms"] is None else f"{row['median_ms']:.3g}"
    return (f"| {model} | {row['backend']} | {yes(row['converted'])} | {yes(row['ran'])} | {yes(row['agrees'])} "
            f"| {compile_s} | {median} | {row['why'] or ''} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", default=",".join(BUILTIN + REAL))
    parser.add_argument("--layers", type=int, default=2, help="ViT and BERT encoder layers (%(default)s)")
    parser.add_argument("--seconds", type=float, default=1.0, help="bench's minimum timed seconds (%(default)s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warm-cache", action="store_true", help="keep HWKIT_CACHE_DIR (conversions may be cached)")
    args = parser.parse_args()
    if not args.warm_cache:  # before hwkit reads it: every conversion (and export) starts cold
        os.environ["HWKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="hwkit-tf-bench-")

    from hwkit import Model

    print("| model | backend | converted | ran | agrees | compile s | median ms | failure |")
    print("|---|---|---|---|---|---|---|---|")
    for name in filter(None, args.models.split(",")):
        start = time.monotonic()
        model = Model.builtin(name) if name in BUILTIN else real_architecture(name, args.layers)
        exported = time.monotonic() - start
        for row in one_model(model, args.seconds, args.threads):
            print(line(name, row), flush=True)
        print(f"<!-- {name}: built/exported in {exported:.0f} s, everything in {time.monotonic() - start:.0f} s -->",
              flush=True)


if __name__ == "__main__":
    main()
