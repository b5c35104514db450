"""hwkit's converted graph against the original torch module, side by side in one run.

For each built-in model: the native module and hwkit's ONNX→torch.fx conversion of its export,
both eager and torch.compile'd, on the same inputs and threads, in alternating rounds. Prints
medians and ratios. Goals: converted eager <= 1.00x native eager; compiled faster than native eager.

    python benchmarks/torch_backend.py [--models cnn,encoder] [--rounds 3] [--seconds 1.5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from hwkit import Model
from hwkit.model.zoo import BUILTIN_MODELS
from hwkit_torch.fx import convert


def median_time(fn: Callable[[], object], seconds: float) -> float:
    for _ in range(3):
        fn()
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(samples) < 10:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn,encoder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        model = Model.builtin(name)
        inputs = [torch.from_numpy(a) for a in model.make_inputs(seed=0).values()]
        native, _ = BUILTIN_MODELS[name].build()
        native.eval()
        converted = convert(model.proto, backend="cpu").eval()
        variants = {
            "native eager": native,
            "converted eager": converted,
            "native compiled": torch.compile(native, fullgraph=True),
            "converted compiled": torch.compile(converted, fullgraph=True),
        }
        results: dict[str, list[float]] = {k: [] for k in variants}
        with torch.inference_mode():
            for _ in range(args.rounds):
                for label, module in variants.items():
                    results[label].append(median_time(lambda m=module: m(*inputs), args.seconds))
        medians = {k: statistics.median(v) for k, v in results.items()}
        base = medians["native eager"]
        print(f"{name}: " + "   ".join(f"{k} {v * 1e3:.3f} ms ({v / base:.2f}x)" for k, v in medians.items()))
        print(f"{name}: converted eager / native eager = {medians['converted eager'] / base:.3f}; "
              f"converted compiled / native eager = {medians['converted compiled'] / base:.3f}")


if __name__ == "__main__":
    main()
