"""hwkit's decode tokens/s against a raw ONNX Runtime loop, side by side in one run.

The raw loop is what a careful user writes by hand: one InferenceSession with the same options
hwkit's onnxruntime backend sets (threads, one inter-op thread, spinning, all optimisations),
IOBinding with the presents left in ORT's OrtValues and bound back as the next step's pasts,
greedy argmax on the host. hwkit's side is exactly what ``bench --generate`` times
(``open_session`` with the backend's native session, then ``greedy``) on a compiled backend. Both use the same graph and the same seeded prompt tokens;
generations alternate (raw, hwkit, raw, hwkit, ...) so drift on a shared machine hits both.
Goal: hwkit / raw >= 0.95.

    python benchmarks/generate_overhead.py [--model decoder] [--prompt 128] [--new 64] [--batch 1] [--pairs 12]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort

import hwkit
from hwkit.backend import Executable
from hwkit.generate import convention
from hwkit.generate.bench import prepare
from hwkit.generate.loop import greedy
from hwkit.generate.session import open_session
from hwkit.generate.settings import GenerateSettings
from hwkit.measure.settings import default_threads
from hwkit.model import Model


class RawLoop:
    """A hand-written greedy loop on ORT with IOBinding: the presents stay in OrtValues."""

    def __init__(self, model: Model, threads: int) -> None:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "1")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(model.path) if model.path else model.serialized, so,
                                            providers=["CPUExecutionProvider"])
        self.conv = convention.read(model)

    def decode_rate(self, prompt: np.ndarray, new: int) -> float:
        """Decode tokens/s of one generation (the prefill excluded, as hwkit's figure)."""
        batch = prompt.shape[0]
        binding = self.session.io_binding()
        past = {name: ort.OrtValue.ortvalue_from_numpy(array) for name, array in self.conv.empty_cache(batch).items()}
        ids, done, decode = prompt, 0, 0.0
        for step in range(new):
            start = time.perf_counter()
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
            binding.bind_cpu_input("input_ids", ids)
            binding.bind_cpu_input("attention_mask", np.ones((batch, done + ids.shape[1]), np.int64))
            binding.bind_cpu_input("position_ids", np.broadcast_to(
                np.arange(done, done + ids.shape[1], dtype=np.int64), ids.shape).copy())
            for name, value in past.items():
                binding.bind_ortvalue_input(name, value)
            binding.bind_output("logits", "cpu")
            for present in self.conv.cache:
                binding.bind_output(present, "cpu")
            self.session.run_with_iobinding(binding)
            values = binding.get_outputs()
            token = values[0].numpy()[:, -1].argmax(-1)
            past = {self.conv.cache[name]: value for name, value in zip(self.conv.cache, values[1:])}
            if step:
                decode += time.perf_counter() - start
            done += ids.shape[1]
            ids = token[:, None]
        return batch * (new - 1) / decode


def hwkit_decode_rate(exe: Executable, conv: convention.Convention, prompt: np.ndarray, new: int) -> float:
    """Decode tokens/s of one generation through exactly what ``bench --generate`` times:
    ``open_session`` (the backend's native session) and ``greedy``."""
    session, where = open_session(exe, conv.cache, conv.empty_cache(prompt.shape[0]), ["logits"])
    if where != "native":
        raise SystemExit("the onnxruntime backend offered no native session")
    try:
        generation = greedy(session, conv, prompt, new)
    finally:
        session.close()
    return prompt.shape[0] * (new - 1) / sum(generation.step_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="decoder")
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=12, help="alternating (raw, hwkit) generations")
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    model = Model.load(args.model) if args.model.endswith(".onnx") else Model.builtin(args.model)
    settings = GenerateSettings(prompts=(args.prompt,), new=args.new, batches=(args.batch,), isolation=False)
    _, prompts = prepare(model, ["onnxruntime"], None, settings)  # bench's own seeded prompt tokens
    prompt = prompts[args.prompt][:args.batch]
    conv = convention.read(model)
    raw_loop = RawLoop(model, args.threads)
    raw, ours = [], []
    with hwkit.compile(model, "onnxruntime", threads=args.threads) as exe:
        raw_loop.decode_rate(prompt, min(args.new, 16))  # warm-up, both sides
        hwkit_decode_rate(exe, conv, prompt, min(args.new, 16))
        for _ in range(args.pairs):
            raw.append(raw_loop.decode_rate(prompt, args.new))
            ours.append(hwkit_decode_rate(exe, conv, prompt, args.new))
    ratios = [b / a for a, b in zip(raw, ours)]
    print(f"{model.name}, prompt {args.prompt}, {args.new} new, batch {args.batch}, {args.threads} threads, "
          f"{args.pairs} alternating pairs")
    print(f"raw ORT IOBinding: median {statistics.median(raw):,.1f} decode tok/s (min {min(raw):,.1f}, max {max(raw):,.1f})")
    print(f"hwkit:             median {statistics.median(ours):,.1f} decode tok/s (min {min(ours):,.1f}, max {max(ours):,.1f})")
    print(f"hwkit / raw: ratio of medians {statistics.median(ours) / statistics.median(raw):.3f}, "
          f"median of pair ratios {statistics.median(ratios):.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
