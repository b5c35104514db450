"""hwkit's converted graph against the same model written natively in torch, side by side.

For each built-in model: a torch module written by hand with the layers of hwkit's ONNX graph
(hwkit/model/zoo/) and that graph's weights, and hwkit's ONNX→torch.fx conversion of the graph,
both eager and torch.compile'd, on the same inputs and threads, in alternating rounds. The two
are first checked to give the same outputs. Prints medians and ratios. Goals: converted eager
<= 1.00x native eager; compiled faster than native eager.

    python benchmarks/torch_backend.py [--models cnn,encoder] [--rounds 3] [--seconds 1.5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from hwkit import Model
from hwkit_torch.fx import convert


class Linear(nn.Linear):
    """nn.Linear holding a weight stored in (in, out) order for MatMul, or (out, in) for Gemm."""

    def __init__(self, w: dict[str, torch.Tensor], name: str, transposed: bool = True) -> None:
        weight = w[f"{name}.weight"]
        weight = weight.T if transposed else weight
        super().__init__(weight.shape[1], weight.shape[0])
        self.weight.data, self.bias.data = weight.contiguous(), w[f"{name}.bias"]


class Mlp(nn.Module):
    def __init__(self, w: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.fc0, self.fc1 = Linear(w, "fc0", transposed=False), Linear(w, "fc1", transposed=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc1(F.relu(self.fc0(x)))


def conv(w: dict[str, torch.Tensor], name: str, stride: int) -> nn.Conv2d:
    weight = w[f"{name}.weight"]
    layer = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], stride, weight.shape[2] // 2)
    layer.weight.data, layer.bias.data = weight, w[f"{name}.bias"]  # BatchNorm folded in, as in the graph
    return layer


class Block(nn.Module):
    def __init__(self, w: dict[str, torch.Tensor], name: str, stride: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = conv(w, f"{name}.conv1", stride), conv(w, f"{name}.conv2", 1)
        self.down = conv(w, f"{name}.down", stride) if f"{name}.down.weight" in w else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.down(x))


class Cnn(nn.Module):
    def __init__(self, w: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.stem = conv(w, "stem", 2)
        self.blocks = nn.Sequential(*(Block(w, f"stage{s}.block{b}", 2 if s and not b else 1)
                                      for s in range(4) for b in range(2)))
        self.fc = Linear(w, "fc", transposed=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.max_pool2d(F.relu(self.stem(x)), 3, 2, 1))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def layer_norm(w: dict[str, torch.Tensor], name: str) -> nn.LayerNorm:
    norm = nn.LayerNorm(w[f"{name}.weight"].shape[0])
    norm.weight.data, norm.bias.data = w[f"{name}.weight"], w[f"{name}.bias"]
    return norm


class Layer(nn.Module):
    def __init__(self, w: dict[str, torch.Tensor], name: str, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.out = Linear(w, f"{name}.attention.qkv"), Linear(w, f"{name}.attention.out")
        self.norm1, self.norm2 = layer_norm(w, f"{name}.attention.norm"), layer_norm(w, f"{name}.ff.norm")
        self.ff1, self.ff2 = Linear(w, f"{name}.ff1"), Linear(w, f"{name}.ff2")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, h)
        x = self.norm1(x + self.out(att))
        return self.norm2(x + self.ff2(F.gelu(self.ff1(x))))


class Encoder(nn.Module):
    def __init__(self, w: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.tokens = nn.Embedding.from_pretrained(w["embeddings.tokens"])
        self.positions = nn.Parameter(w["embeddings.positions"])
        self.norm = layer_norm(w, "embeddings.norm")
        self.layers = nn.ModuleList(Layer(w, f"layer{i}", heads=4) for i in range(4))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.tokens(input_ids) + self.positions)
        for layer in self.layers:
            x = layer(x)
        return x


NATIVE: dict[str, Callable[[dict[str, torch.Tensor]], nn.Module]] = {"mlp": Mlp, "cnn": Cnn, "encoder": Encoder}


def native_module(name: str, proto: onnx.ModelProto) -> nn.Module:
    """The built-in ``name`` written natively in torch, holding the weights of its ONNX graph."""
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    return NATIVE[name](weights).eval()


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
        native = native_module(name, model.proto)
        converted = convert(model.proto, backend="cpu").eval()
        with torch.inference_mode():  # the same model, or the comparison means nothing
            (expected,) = converted(*inputs)
            np.testing.assert_allclose(native(*inputs).numpy(), expected.numpy(), rtol=1e-3, atol=1e-4)
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
