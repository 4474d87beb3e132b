#!/usr/bin/env bash
# bench/gpu_train.py on the GPU machine (no Ray, no deltalake there): prepare here with
#   .venv/bin/python bench/gpu_train.py export
# then run this through the device tool with `carry: ["bench/out/gpu-data"]`.
# Figures land in $OUT (or bench/out) as gpu-train.json; record them in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench/out}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export PYTHONUNBUFFERED=1
python3 bench/gpu_train.py run --data bench/out/gpu-data --image-size 224 --batch-size 256 \
  --workers "${WORKERS:-14}" --steps 60 --warmup 10 --runs 3 --json "$out/gpu-train.json"
