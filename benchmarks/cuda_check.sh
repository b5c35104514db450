#!/usr/bin/env bash
# The cuda backend's real checks, in one go, for a machine with an NVIDIA GPU:
# the cuda tests, then a small bench of cuda against the CPU backends (latency, fp16, CUDA graphs).
#   bash benchmarks/cuda_check.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-cuda-check}
mkdir -p "$out"
PY=${PY:-python3}
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$out/env.txt"
$PY -m hwkit.cli backends | tee -a "$out/env.txt"
$PY -m pytest -q -p no:logging plugins/hwkit-torch/tests/test_cuda_backend.py 2>&1 | tee "$out/tests.txt"
for model in cnn encoder; do
  $PY -m hwkit.cli bench "$model" -b cuda,onnxruntime --batch 1,8,32 --min-time 2 --json "$out/bench-$model.json" 2>&1 | tee "$out/bench-$model.txt"
done
$PY -m hwkit.cli bench encoder -b cuda --precision fp32,bf16,fp16 -o cuda.cuda_graphs=true --min-time 2 \
  --json "$out/bench-encoder-fp16-graphs.json" 2>&1 | tee "$out/bench-encoder-fp16-graphs.txt"
$PY -m hwkit.cli check cnn -b cuda,onnxruntime 2>&1 | tee "$out/check-cnn.txt"
# The fast path (Inductor with freezing and CUDA graphs: docs/torch-backends.md): parity, then speed
# next to eager cuda; compile_s in the JSON holds the compilation.
for model in cnn encoder; do
  $PY -m hwkit.cli check "$model" -b cuda,onnxruntime -o cuda.compile=fast 2>&1 | tee "$out/check-$model-fast.txt"
  $PY -m hwkit.cli bench "$model" -b cuda,onnxruntime -o cuda.compile=fast --batch 1,32 --min-time 2 \
    --json "$out/bench-$model-fast.json" 2>&1 | tee "$out/bench-$model-fast.txt"
done
