"""Scoring throughput: `smartray predict` against the same model looping in one process.

    .venv/bin/python bench/predict.py [--images 10000] [--runs 3] [--actors 2]

The lake: the Fashion-MNIST lake of `bench/train_input.py` (its 10,000 test images, built
once under bench/out), and a `small-cnn` trained on it for one epoch at 32 px (once; the
newest model of experiment `bench-predict` is reused). Interleaved rounds:

- baseline: the model in this process (torch with 2 threads) over every image decoded
  beforehand (`decode_batch`, not timed) into one uint8 tensor, in batches of 256:
  normalise, forward with the embedding hook, softmax — the model's work alone;
- smartray: `smartray.predict.predict` on all assets end to end (choose the assets, check
  the checkpoint, Ray Data read + decode + `Scorer` actors + part writes, the commit),
  `--actors` actors of `--cpus-per-actor` CPUs each (torch threads: as many; default one
  actor holding both CPUs), on a local Ray (2 CPUs) started once and not timed;
  the `predictions` table is removed before each round so every pair is scored.

Prints assets per second of both and the median ratio (smartray / baseline) with its
range. Goal: >= 0.8 on 2 cores.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
EXPERIMENT = "bench-predict"


def model_for(lake_dir: Path) -> str:
    """The bench model's id: trained once (1 epoch, small-cnn, 32 px)."""
    from smartray.predict.model import find_model
    from smartray.tables import Lake
    from smartray.train import TrainConfig, train

    lake = Lake(lake_dir)
    try:
        return find_model(lake, "latest", EXPERIMENT).model_id
    except Exception:  # no model of the experiment yet
        config = TrainConfig(split="bench", experiment=EXPERIMENT, epochs=1, image_size=32)
        return train(config, lake=str(lake_dir)).model_id


def decoded(lake_dir: Path, image_size: int) -> torch.Tensor:
    """Every asset of the latest `assets` version, decoded and resized, as one tensor."""
    import pyarrow as pa

    from smartray.tables import Lake
    from smartray.train.inputs import decode_batch

    lake = Lake(lake_dir)
    files = lake.files("assets", lake.version("assets") or 0)
    parts = []
    for f in files:
        t = pq.read_table(f, columns=["asset_id", "data"])
        wanted = pa.table({"asset_id": t["asset_id"], "label": pa.array([0] * t.num_rows)})
        parts.append(decode_batch(t, labels=wanted, image_size=image_size)["image"])
    return torch.from_numpy(np.concatenate(parts))


def run_baseline(lake_dir: Path, model_id: str, images: torch.Tensor) -> float:
    """Seconds for the model alone over `images` in one process."""
    from smartray.predict.model import find_model, load_weights
    from smartray.predict.scorer import uncertainty
    from smartray.tables import Lake
    from smartray.train import nets
    from smartray.train.inputs import normalize

    lake = Lake(lake_dir)
    recorded = find_model(lake, model_id)
    model = nets.build(recorded.architecture, len(recorded.classes))
    model.load_state_dict(load_weights(lake, recorded))
    model.eval()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(images), 256):
            logits, emb = nets.forward_with_embedding(model, normalize(images[i : i + 256]))
            uncertainty(torch.softmax(logits, 1).numpy())
            emb.numpy()
    return time.perf_counter() - t0


def run_smartray(lake_dir: Path, model_id: str, actors: int, cpus: float) -> tuple[float, int]:
    """Seconds for `predict` on every asset, and the pairs it wrote."""
    from smartray.predict import PredictConfig, predict

    shutil.rmtree(lake_dir / "predictions", ignore_errors=True)
    t0 = time.perf_counter()
    config = PredictConfig(model=model_id, actors=actors, cpus_per_actor=cpus)
    summary = predict(config, lake=str(lake_dir))
    return time.perf_counter() - t0, summary.counts["predicted"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--actors", type=int, default=1)
    ap.add_argument("--cpus-per-actor", type=float, default=2.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import ray
    from train_input import build_lake

    lake_dir = build_lake(args.images)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        model_id = model_for(lake_dir)
        images = decoded(lake_dir, 32)
        for r in range(args.runs):
            base_s = run_baseline(lake_dir, model_id, images)
            ray_s, written = run_smartray(lake_dir, model_id, args.actors, args.cpus_per_actor)
            assert written == len(images), (written, len(images))
            row = {"round": r + 1, "assets": written, "baseline_assets_s": written / base_s,
                   "smartray_assets_s": written / ray_s, "ratio": base_s / ray_s}  # fmt: skip
            rows.append(row)
            print(f"round {r + 1}: {written} assets; model alone {row['baseline_assets_s']:.0f}"
                  f"/s, smartray predict {row['smartray_assets_s']:.0f}/s; ratio "
                  f"{row['ratio']:.3f}", flush=True)  # fmt: skip
    finally:
        ray.shutdown()
    ratios = [row["ratio"] for row in rows]
    print(f"== median ratio {np.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    gc.collect()


if __name__ == "__main__":
    main()
