"""How much does hwkit add to what it measures? Side by side, in one process and one run.

hwkit's timed loop (``hwkit.measure.loop.measure``, in-process) against the loop a user would write
around the bare runtime: ``InferenceSession.run`` and OpenVINO's ``InferRequest.infer``, on the
same model, inputs and threads. Rounds alternate (bare, hwkit, bare, hwkit …) so drift on a
shared machine hits both alike. Goal: ratio <= 1.02 on ``cnn``; a few µs per call on ``mlp``.

    python benchmarks/overhead.py [--rounds 3] [--seconds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from hwkit import Model
from hwkit.measure.loop import measure
from hwkit.measure.records import BackendResult
from hwkit.measure.settings import BenchSettings
from hwkit.runner.plan import make_input_sets


def bare_loop(call, input_sets, seconds: float, warmup: int = 10) -> list[float]:
    for i in range(warmup):
        call(input_sets[i % len(input_sets)])
    samples = []
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        inputs = input_sets[i % len(input_sets)]
        t0 = time.perf_counter()
        call(inputs)
        samples.append(time.perf_counter() - t0)
        i += 1
    return samples


def bare_onnxruntime(model: Model, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model.path), so, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)


def bare_openvino(model: Model, threads: int):
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(model.path)), "CPU",
                                  {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                   "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    return lambda feeds: request.infer(feeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for model_name in ("cnn", "mlp"):
        model = Model.builtin(model_name)
        settings = BenchSettings(min_time=args.seconds, min_iters=20, warmup_iters=10, warmup_time=0.2,
                                 threads=args.threads, isolation=False, efficiency=False,
                                 target_ci=None)  # the same duration as the bare loop
        input_sets = make_input_sets(model, count=settings.input_sets).sets
        for backend, bare in (("onnxruntime", bare_onnxruntime), ("openvino", bare_openvino)):
            call = bare(model, args.threads)
            bare_medians, hwkit_medians = [], []
            for _ in range(args.rounds):
                bare_medians.append(statistics.median(bare_loop(call, input_sets, args.seconds)))
                record = measure(model, backend, BackendResult(backend), input_sets=input_sets, settings=settings)
                hwkit_medians.append(statistics.median(record.samples))
            b, h = float(np.median(bare_medians)), float(np.median(hwkit_medians))
            print(f"{model_name:4s} {backend:12s} bare {b * 1e6:10.1f} µs   hwkit {h * 1e6:10.1f} µs   "
                  f"ratio {h / b:5.3f}   added {(h - b) * 1e6:+7.2f} µs/call")


if __name__ == "__main__":
    main()
