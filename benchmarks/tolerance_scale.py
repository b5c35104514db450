"""Does the fp32 absolute tolerance need to grow with the output's magnitude? Measured on real
architectures (transformers configs, random weights, nothing downloaded).

For each model, every output of onnxruntime (the reference), openvino and cpu (fp32) on the same
two seeded input sets; printed per output and backend: the reference's magnitude (max |ref|,
rms(ref)), the largest difference (max abs) and that difference in units of rms(ref), the |ref|
at the worst element, the smallest atol that passes (with rtol 1e-3) and that in units of
rms(ref), and how many elements fail the fp32 profile (atol 1e-4, rtol 1e-3) under
the plain rule and under atol · max(1, rms(ref)). ``--scales`` reruns the ResNets with the
inputs multiplied by each factor: eval-mode BatchNorm with fresh statistics, bias-free
convolutions and ReLU make the network positively homogeneous, so only the magnitude changes.

    python benchmarks/tolerance_scale.py [--models resnet50,resnet18,bert,vit,gpt2] [--scales 1,10,100]

Needs transformers (``pip install transformers``); a development tool, run by hand: the
figures are in docs/parity.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

import hwkit
from hwkit.parity.tolerance import TOLERANCES
from hwkit.runner.plan import make_input_sets

BACKENDS = ["onnxruntime", "openvino", "cpu"]


class Outputs(torch.nn.Module):
    """A transformers model returning plain tensors (what the exporter needs)."""

    def __init__(self, model: torch.nn.Module, keys: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(*args)
        return tuple(out[k] for k in self.keys)


def resnet(depths: list[int], layer_type: str) -> Callable[[], tuple[torch.nn.Module, tuple[torch.Tensor, ...]]]:
    def build() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
        from transformers import ResNetConfig, ResNetModel

        config = ResNetConfig(depths=depths, layer_type=layer_type,
                              hidden_sizes=[256, 512, 1024, 2048] if layer_type == "bottleneck" else [64, 128, 256, 512])
        return Outputs(ResNetModel(config), ("last_hidden_state", "pooler_output")), (torch.randn(1, 3, 224, 224),)
    return build


def bert() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                        vocab_size=1000, max_position_embeddings=128)
    ids = torch.randint(0, 1000, (1, 64))
    return Outputs(BertModel(config), ("last_hidden_state", "pooler_output")), (ids,)


def vit() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=64, patch_size=8, hidden_size=192, num_hidden_layers=4, num_attention_heads=3,
                       intermediate_size=768, num_labels=100)
    return Outputs(ViTForImageClassification(config), ("logits",)), (torch.randn(1, 3, 64, 64),)


def gpt2() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_embd=256, n_layer=4, n_head=4, vocab_size=2000, n_positions=128)
    config.use_cache = False
    return Outputs(GPT2LMHeadModel(config), ("logits",)), (torch.randint(0, 2000, (1, 64)),)


MODELS = {"resnet50": resnet([3, 4, 6, 3], "bottleneck"), "resnet18": resnet([2, 2, 2, 2], "basic"),
          "bert": bert, "vit": vit, "gpt2": gpt2}


def measure(name: str, model: hwkit.Model, scale: float) -> list[tuple[str, ...]]:
    fp32 = TOLERANCES["fp32"]
    sets = [{k: v * scale if v.dtype.kind == "f" else v for k, v in s.items()}
            for s in make_input_sets(model, count=2).sets]
    reports = [hwkit.check(model, BACKENDS, reference="onnxruntime", inputs=s) for s in sets]
    refs = [r.reference.outputs[0] for r in reports if r.reference.outputs]
    others = {b.backend: [r.results[i].outputs[0] for r in reports if r.results[i].outputs]
              for i, b in enumerate(reports[0].results)}
    rows = []
    for backend, outs in others.items():
        for out in refs[0]:
            ref = np.stack([r[out] for r in refs]).astype(np.float64)
            got = np.stack([o[out] for o in outs]).astype(np.float64)
            diff = np.abs(got - ref)
            rms = float(np.sqrt(np.mean(ref ** 2)))
            peak = float(np.abs(ref).max())
            worst = int(diff.argmax())
            plain = int(np.count_nonzero(diff > fp32.atol + fp32.rtol * np.abs(ref)))
            scaled = int(np.count_nonzero(diff > fp32.effective_atol(rms) + fp32.rtol * np.abs(ref)))  # hwkit's rule
            needed = float((diff - fp32.rtol * np.abs(ref)).max())  # the smallest atol that passes
            rows.append((name, f"x{scale:g}", out, backend, str(ref.size), f"{peak:.3g}", f"{rms:.3g}",
                         f"{diff.max():.2e}", f"{diff.max() / rms if rms else float('inf'):.2e}",
                         f"{abs(ref.flat[worst]):.2g}", f"{needed:.2e}", f"{needed / rms if rms else float('inf'):.2e}",
                         str(plain), str(scaled)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,resnet18,bert,vit,gpt2")
    parser.add_argument("--scales", default="1,10,100", help="input factors for the ResNets")
    args = parser.parse_args()
    torch.manual_seed(0)
    header = ("model", "input", "output", "backend", "elements", "max|ref|", "rms(ref)", "max abs", "max abs/rms",
              "|ref| there", "atol needed", "needed/rms", "fail plain", "fail scaled")
    rows = [header]
    for name in args.models.split(","):
        start = time.perf_counter()
        module, example = MODELS[name]()
        model = hwkit.Model.from_torch(module.eval(), example, name=name)
        scales = [float(s) for s in args.scales.split(",")] if name.startswith("resnet") else [1.0]
        for scale in scales:
            rows += measure(name, model, scale)
        print(f"# {name}: {time.perf_counter() - start:.0f} s", flush=True)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))


if __name__ == "__main__":
    main()
