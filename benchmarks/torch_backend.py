"""The torch backends side by side: against native torch, and against the ONNX runtimes.

Part 1 (``--models``): for each built-in model, a torch module written by hand with the layers
of hwkit's ONNX graph (hwkit/model/zoo/) and that graph's weights, and hwkit's ONNX→torch.fx
conversion of the graph as the cpu backend runs it, eager and compile=fast, on the same inputs and threads, in
alternating rounds. The two are first checked to give the same outputs. Goals: converted eager
<= 1.00x native eager; the fast mode faster than native eager.

Part 2 (``--runtimes``): the cpu backend, eager and ``compile=fast``, against onnxruntime and
openvino through ``hwkit.bench`` (each backend in a process of its own, the same seeded inputs,
parity judged with the fp32 profile), on the built-in cnn and encoder and on real architectures
built from transformers configs with random weights (transformers: a development dependency).
Rounds alternate; the table holds the medians over rounds, the ratio of the fast mode to the
fastest runtime (goal <= 1.2x) and the fast mode's compile time (goal < 60 s for cnn).

    python benchmarks/torch_backend.py [--models cnn,encoder] [--rounds 3] [--seconds 1.5] [--threads 2]
    python benchmarks/torch_backend.py --models '' --runtimes cnn,encoder,resnet50,mobilenetv2,vit,bert,gpt2
"""

from __future__ import annotations

import argparse
import os
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
from hwkit_torch.compiled import compile_graph
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
    parser.add_argument("--runtimes", default="", help="part 2: models to bench against the runtimes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.runtimes:
        compare_with_runtimes(args.runtimes.split(","), args.rounds, args.seconds, args.threads)
    for name in filter(None, args.models.split(",")):
        model = Model.builtin(name)
        inputs = [torch.from_numpy(a) for a in model.make_inputs(seed=0).values()]
        native = native_module(name, model.proto)
        # What the cpu backend runs: the conversion plus its CPU rewrites (hwkit_torch.compiled).
        converted = compile_graph(convert(model.proto, backend="cpu").eval(), "off", "cpu")
        with torch.inference_mode():  # the same model, or the comparison means nothing
            (expected,) = converted(*inputs)
            np.testing.assert_allclose(native(*inputs).numpy(), expected.numpy(), rtol=1e-3, atol=1e-4)
        variants = {
            "native eager": native,
            "converted eager": converted,
            "native compiled": torch.compile(native, fullgraph=True),
            "converted fast": compile_graph(convert(model.proto, backend="cpu").eval(), "fast", "cpu"),
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
              f"converted fast / native eager = {medians['converted fast'] / base:.3f}")


# ------------------------------------------------------------------ part 2: against the runtimes
RUNTIMES = ("onnxruntime", "openvino")
CPU_MODES = {"cpu eager": {"compile": "off"}, "cpu fast": {"compile": "fast"}}


class _FirstOutput(nn.Module):
    """A transformers model returning its first output as one tensor (logits or hidden states)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x, return_dict=False)[0]


def real_architecture(name: str) -> Model:
    """A real architecture from its transformers config, random weights, exported at batch 1."""
    import transformers as tf

    torch.manual_seed(0)
    image = torch.randn(1, 3, 224, 224)
    tokens = torch.randint(0, 1000, (1, 128))
    builders: dict[str, Callable[[], tuple[nn.Module, torch.Tensor]]] = {
        "resnet50": lambda: (tf.ResNetForImageClassification(tf.ResNetConfig()), image),  # the ResNet-50 layout
        "mobilenetv2": lambda: (tf.MobileNetV2ForImageClassification(tf.MobileNetV2Config()), image),
        # ViT-Base/16 and BERT-base widths with 6 / 4 layers: the per-layer work is the real one.
        "vit": lambda: (tf.ViTModel(tf.ViTConfig(num_hidden_layers=6), add_pooling_layer=False), image),
        "bert": lambda: (tf.BertModel(tf.BertConfig(num_hidden_layers=4), add_pooling_layer=False), tokens),
        "gpt2": lambda: (tf.GPT2Model(tf.GPT2Config(n_layer=4)), tokens),
    }
    module, example = builders[name]()
    return Model.from_torch(_FirstOutput(module), (example,), name=name)


def compare_with_runtimes(names: list[str], rounds: int, seconds: float, threads: int) -> None:
    """Part 2: medians over alternating rounds, each backend measured in a process of its own."""
    import hwkit

    rows = []
    for name in names:
        model = Model.builtin(name) if name in NATIVE else real_architecture(name)
        times: dict[str, list[float]] = {k: [] for k in (*RUNTIMES, *CPU_MODES)}
        compile_s: dict[str, list[float]] = {k: [] for k in CPU_MODES}
        parity: dict[str, bool] = {}
        for _ in range(rounds):
            for label, options in CPU_MODES.items():  # cpu modes first, then the runtimes, by turns
                backends = ["cpu", *RUNTIMES] if label == "cpu fast" else ["cpu"]
                result = hwkit.bench(model, backends, threads=threads, min_time=seconds, max_time=4 * seconds,
                                     options={"cpu": options}, reference="onnxruntime", efficiency=False)
                for record in result.results:
                    key = label if record.backend == "cpu" else record.backend
                    if not record.ok or record.summary is None:
                        raise SystemExit(f"{name}: {key} failed: {record.error}")
                    times[key].append(record.summary.median)
                    if record.backend == "cpu":
                        compile_s[label].append(record.compile_s or 0.0)
                        parity[label] = parity.get(label, True) and record.parity_passed is not False
        medians = {k: statistics.median(v) for k, v in times.items()}
        fastest = min(medians[r] for r in RUNTIMES)
        # The machine is shared: the 1-minute load after each model says how quiet the row's run was.
        print(f"{name}: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; per round (ms): "
              + "; ".join(f"{k} {', '.join(f'{t * 1e3:.2f}' for t in v)}" for k, v in times.items()), flush=True)
        rows.append((name, medians, fastest, {k: statistics.median(v) for k, v in compile_s.items()}, parity))
        _print_row(*rows[-1])
    print("\n| model | onnxruntime | openvino | cpu eager | cpu fast | eager ÷ fastest | fast ÷ fastest "
          "| fast compile s | parity (fp32) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        _print_row(*row)


def _print_row(name: str, medians: dict[str, float], fastest: float, compile_s: dict[str, float],
               parity: dict[str, bool]) -> None:
    ms = " | ".join(f"{medians[k] * 1e3:.2f} ms" for k in (*RUNTIMES, *CPU_MODES))
    agree = "yes" if all(parity.values()) else "NO"
    print(f"| {name} | {ms} | {medians['cpu eager'] / fastest:.2f}x | {medians['cpu fast'] / fastest:.2f}x "
          f"| {compile_s['cpu fast']:.1f} | {agree} |", flush=True)


if __name__ == "__main__":
    main()
