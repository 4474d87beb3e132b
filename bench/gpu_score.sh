#!/usr/bin/env bash
# bench/gpu_score.py on the GPU machine (no Ray, no deltalake there): prepare here with
#   .venv/bin/python bench/gpu_train.py export
# then run this through the device tool with `carry: ["bench/out/gpu-data"]`.
# Figures land in $OUT (or bench/out) as gpu-score*.json; record them in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench/out}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export PYTHONUNBUFFERED=1
python3 bench/gpu_score.py --data bench/out/gpu-data --model resnet18 --image-size 224 \
  --batch-size 256 --workers "${WORKERS:-14}" --batches 30 --warmup 5 --runs 3 \
  --json "$out/gpu-score-resnet18.json"
python3 bench/gpu_score.py --data bench/out/gpu-data --model small-cnn --image-size 64 \
  --batch-size 512 --workers "${WORKERS:-14}" --mc-dropout 10 --batches 30 --warmup 5 \
  --runs 3 --json "$out/gpu-score-small-cnn-mc10.json"
