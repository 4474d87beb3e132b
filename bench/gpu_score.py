"""GPU scoring: the lake's images scored as `smartray score` does, against the bare model.

    # here (needs the lake): the rows to score, once (the same file as bench/gpu_train.py)
    .venv/bin/python bench/gpu_train.py export
    # on the GPU machine (pyarrow, cv2 and torch; no Ray, no deltalake): bench/gpu_score.sh
    python3 bench/gpu_score.py --data bench/out/gpu-data [--device cuda]

Two sides, interleaved, `--runs` rounds, each `--batches` batches after `--warmup`:

- fed: a `torch.utils.data.DataLoader` (`--workers` processes) whose workers read row
  groups with pyarrow and decode them with `smartray.train.inputs.decode_batch` (no
  augmentation, resized to `--image-size`, uint8), handed as numpy to
  `smartray.predict.scorer.Scorer` — what each `predict`/`score` actor runs: copy to the
  device, normalise, forward with the embedding hook under autocast, softmax, the
  uncertainty statistics, and `--mc-dropout` passes when asked (the model: `small-cnn`
  has dropout; ResNet-18 has none);
- bound: the same model's forward + softmax (and the MC passes) on one batch already on
  the device.

Prints images/s of both and the median ratio (fed / bound) with its range. Goal: >= 0.9.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # smartray from the checkout, installed or not
sys.path.insert(0, str(HERE))
DATA = HERE / "out" / "gpu-data"


def timed(step: Any, n: int, warmup: int, device: torch.device) -> float:
    """Images per second of `n` calls of `step()` (each returns its batch size)."""
    seen, start = 0, 0.0
    for i in range(warmup + n):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start, seen = time.perf_counter(), 0
        seen += step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> None:
    from gpu_train import batches, report  # the same loader (no augmentation), report

    from smartray.predict.scorer import Scorer
    from smartray.train import nets
    from smartray.train.inputs import normalize

    device = torch.device(args.device)
    path = args.data / "train.parquet"
    classes = int(pc.max(pq.read_table(path, columns=["label"])["label"]).as_py()) + 1
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    torch.manual_seed(0)
    weights = nets.build(args.model, classes).state_dict()
    scorer = Scorer(args.model, classes, weights, use_gpu=device.type == "cuda",
                    threads=args.threads, mc_passes=args.mc_dropout)  # fmt: skip
    print(f"device {name}; {pq.ParquetFile(path).metadata.num_rows} images; {args.model} at "
          f"{args.image_size} px, batch {args.batch_size}, {args.workers} loader workers, "
          f"{args.mc_dropout} MC passes", flush=True)  # fmt: skip
    fed = batches(path, args.image_size, args.batch_size, args.workers, ops="")

    def fed_step() -> int:
        x, _ = next(fed)
        ids = np.arange(len(x)).astype(str)
        out = scorer({"image": x.numpy(), "asset_id": ids})
        return len(out["confidence"])

    s = args.image_size
    x = torch.randint(0, 256, (args.batch_size, 3, s, s), dtype=torch.uint8, device=device)
    cuda = device.type == "cuda"

    def bound_step() -> int:
        with torch.inference_mode(), torch.autocast(device.type, enabled=cuda):
            logits, _ = nets.forward_with_embedding(scorer.model, normalize(x))
            torch.softmax(logits.float(), dim=1)
        if args.mc_dropout:  # the same passes, on the device tensor
            scorer._passes(normalize(x))
        return args.batch_size

    rows = []
    for r in range(args.runs):
        a = timed(fed_step, args.batches, args.warmup, device)
        b = timed(bound_step, args.batches, args.warmup, device)
        rows.append({"round": r + 1, "fed_images_s": a, "bound_images_s": b, "ratio": a / b})
        print(f"round {r + 1}: scored from Parquet {a:.0f} images/s, model on device tensors "
              f"{b:.0f} images/s, ratio {a / b:.3f}", flush=True)  # fmt: skip
    report(rows, name, args.json)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the scorer")
    ap.add_argument("--mc-dropout", type=int, default=0)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    run(ap.parse_args(argv))


if __name__ == "__main__":
    main()
