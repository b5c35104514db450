"""Does hwkit's OpenVINO median agree with OpenVINO's own benchmark_app? Side by side.

Same ONNX file, CPU, sync API, one request, one stream, same threads, f32 (benchmark_app needs
-hint none to take -nthreads; hwkit's latency hint also means one stream). Runs alternate
(benchmark_app, hwkit, benchmark_app, hwkit …) and the medians of the rounds are compared.
Goal: within 3%.

    python benchmarks/vendor_agreement.py [--model cnn] [--rounds 3] [--seconds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from hwkit import Model
from hwkit.measure.loop import measure
from hwkit.measure.records import BackendResult
from hwkit.measure.settings import BenchSettings
from hwkit.runner.plan import make_input_sets


def benchmark_app_median(path: Path, shape: str, threads: int, seconds: float) -> float:
    executable = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    command = [executable, "-m", str(path), "-d", "CPU", "-api", "sync", "-nireq", "1", "-hint", "none", "-nstreams", "1",  # hint none: its UI rule for -nthreads
               "-nthreads", str(threads), "-infer_precision", "f32", "-t", str(int(seconds)), "-shape", shape]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Median:\s+([\d.]+)\s+ms", output)
    if not match:
        raise SystemExit(f"could not read benchmark_app's median from:\n{output[-2000:]}")
    return float(match.group(1)) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = Model.builtin(args.model)
    settings = BenchSettings(min_time=args.seconds, min_iters=20, threads=args.threads, isolation=False, efficiency=False,
                             target_ci=None)  # the same duration as benchmark_app
    planned = make_input_sets(model, count=settings.input_sets)
    shapes, input_sets = planned.shapes, planned.sets
    shape = ",".join(f"{name}[{','.join(map(str, dims))}]" for name, dims in shapes.items())
    vendor, ours = [], []
    for _ in range(args.rounds):
        vendor.append(benchmark_app_median(model.path, shape, args.threads, args.seconds))
        record = measure(model, "openvino", BackendResult("openvino"), input_sets=input_sets, settings=settings)
        ours.append(statistics.median(record.samples))
    v, h = statistics.median(vendor), statistics.median(ours)
    print(f"{args.model}: benchmark_app {v * 1e3:.3f} ms   hwkit {h * 1e3:.3f} ms   ratio {h / v:.3f} "
          f"(rounds: vendor {[round(x * 1e3, 3) for x in vendor]}, hwkit {[round(x * 1e3, 3) for x in ours]})")


if __name__ == "__main__":
    main()
