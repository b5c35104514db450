"""How far do bf16, fp16 and int8 outputs lie from fp32 onnxruntime? The figures behind the
tolerance profiles (hwkit/parity/tolerance.py, docs/parity.md "Precision profiles").

For each model (the built-in mlp, cnn and encoder; ResNet-50, BERT and ViT built from
transformers configs with random weights, as in tolerance_scale.py) and each backend that
declares the precision: the outputs on ``--seeds`` seeded inputs against fp32 onnxruntime on the
same inputs. bf16 and fp16 are each backend's ``precision`` option; int8 is hwkit's one QDQ
graph (hwkit.model.quantize) on every backend. Per (model, output, backend, precision) it prints
rms(ref), the largest difference in units of max(1, rms(ref)), and the smallest atol that passes
under hwkit's rule with the profile's rtol (``|d| <= atol * max(1, rms) + rtol * |ref|``), also in
those units; then, per precision, the worst of them: the profile's atol is that times the
margin (``--margin``, default 2), rounded up to one significant digit.

    python benchmarks/precision_profiles.py [--models mlp,cnn,encoder,resnet50,bert,vit] [--seeds 16]

Needs transformers for the real architectures; a development tool, run by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections import defaultdict

import numpy as np

import hwkit
from hwkit.api import precision_support, resolve
from hwkit.model.quantize import quantize_int8
from hwkit.parity.tolerance import TOLERANCES

BACKENDS = ["onnxruntime", "openvino", "cpu"]
PRECISIONS = ["bf16", "fp16", "int8"]


def load(name: str) -> hwkit.Model:
    if name in ("mlp", "cnn", "encoder"):
        return hwkit.Model.builtin(name)
    import torch
    from tolerance_scale import MODELS  # this folder is on sys.path when the script runs

    torch.manual_seed(0)
    module, example = MODELS[name]()
    return hwkit.Model.from_torch(module.eval(), example, name=name)


def nice_ceiling(value: float) -> float:
    """``value`` rounded up to one significant digit (0.67 -> 0.7, 0.125 -> 0.2)."""
    power = 10.0 ** math.floor(math.log10(value))
    return math.ceil(value / power * (1 - 1e-12)) * power


def measure(name: str, seeds: int, threads: int, precisions: list[str]) -> list[dict[str, object]]:
    model = load(name)
    sets = [model.make_inputs(seed=k) for k in range(seeds)]
    reference = hwkit.compile(model, "onnxruntime", threads=threads)
    refs = [reference.run(s) for s in sets]
    int8 = quantize_int8(model).model
    found = []
    for backend in BACKENDS:
        info, device, _ = resolve(backend, {})
        for precision in precisions:
            support = precision_support(info, device, precision)
            graph, option = (int8, "fp32") if precision == "int8" else (model, precision)
            if support.supported:
                executable = hwkit.compile(graph, backend, threads=threads, precision=option)
            elif precision == "fp16" and backend == "cpu":
                # No backend here runs fp16 for speed; torch's slow CPU fp16 kernels still give
                # fp16 numerics (the figure a GPU's fp16 would approach), so compile past the
                # declaration: this measures accuracy, never speed.
                options = info.runtime.Options.parse({"threads": threads, "precision": "fp16"}, backend=backend)
                executable = info.runtime.compile(graph, device, options)
                support = dataclasses.replace(support, unsupported="", emulated="torch's reference fp16 kernels")
            else:
                print(f"#   {name} {backend} {precision}: unsupported ({support.unsupported})")
                continue
            outs = [executable.run(s) for s in sets]
            rtol = TOLERANCES[precision].rtol  # type: ignore[index]
            for output in refs[0]:
                ref = np.stack([r[output] for r in refs]).astype(np.float64)
                got = np.stack([o[output] for o in outs]).astype(np.float64)
                if ref.dtype.kind != "f" or not ref.size:
                    continue
                # hwkit's rule per input set: atol scales with that set's rms(ref)
                scale = np.maximum(1.0, np.sqrt(np.mean(ref.reshape(seeds, -1) ** 2, axis=1)))
                scale = scale.reshape((seeds,) + (1,) * (ref.ndim - 1))
                diff = np.abs(got - ref)
                needed = float(((diff - rtol * np.abs(ref)) / scale).max())
                flat_r, flat_g = ref.reshape(seeds, -1), got.reshape(seeds, -1)
                cos = (flat_r * flat_g).sum(1) / np.linalg.norm(flat_r, axis=1) / np.linalg.norm(flat_g, axis=1)
                found.append({"model": name, "output": output, "backend": backend, "precision": precision,
                              "emulated": bool(support.emulated), "rms": float(np.sqrt(np.mean(ref ** 2))),
                              "max_scaled": float((diff / scale).max()), "needed": max(needed, 0.0),
                              "cos_worst": float(cos.min())})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn,encoder,resnet50,bert,vit")
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--margin", type=float, default=2.0)
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    args = parser.parse_args()
    rows = []
    for name in args.models.split(","):
        start = time.perf_counter()
        rows += measure(name, args.seeds, args.threads, args.precisions.split(","))
        print(f"# {name}: {time.perf_counter() - start:.0f} s", flush=True)
    print(f"\n| model | output | backend | precision | rms(ref) | max abs / max(1, rms) | atol needed (rtol of profile) | worst cosine |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['output']} | {r['backend']} | {r['precision']}{' (emulated)' if r['emulated'] else ''} "
              f"| {r['rms']:.3g} | {r['max_scaled']:.2e} | {r['needed']:.2e} | {r['cos_worst']:.6f} |")
    worst: dict[str, dict[str, object]] = {}
    by_precision: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        by_precision[str(r["precision"])].append(r)
    print(f"\nper precision: worst atol needed, x{args.margin:g}, rounded up (rtol as in the profile)")
    for precision, found in by_precision.items():
        top = max(found, key=lambda r: float(r["needed"]))  # type: ignore[arg-type]
        worst[precision] = top
        atol = nice_ceiling(max(float(top["needed"]), 1e-7) * args.margin)  # type: ignore[arg-type]
        print(f"{precision}: needed {float(top['needed']):.2e} ({top['model']} {top['output']} on {top['backend']}) "  # type: ignore[arg-type]
              f"-> atol {atol:g}, rtol {TOLERANCES[precision].rtol:g}; worst cosine "  # type: ignore[index]
              f"{min(float(r['cos_worst']) for r in found):.6f}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
