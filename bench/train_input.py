"""Training input: batches per second from the lake through Ray Data against a DataLoader.

    .venv/bin/python bench/train_input.py [--images 10000] [--runs 3] [--batch-size 64]

The lake: Fashion-MNIST's 10,000 test images (Debian's `dataset-fashion-mnist`) as
28 px PNGs in class folders, ingested, labelled with the `folders` format, approved and
split (built once under bench/out/train-input-lake). Both sides read the same Parquet
files of the pinned `assets` version (`asset_id`, `data`), keep the labelled training
rows, and run the same `smartray.train.inputs.decode_batch` (decode, the default
augmentation `crop:0.9,jitter:0.1`, resize to 32 px, normalise), then hand batches of
tensors to a consumer that only counts them:

- smartray: `smartray.train.pipeline.stream` (what `smartray train` feeds its workers),
  `iter_torch_batches(batch_size, local_shuffle_buffer_size=2048)`, on a local Ray with 2
  CPUs started (and timed) apart; its second epoch is measured (the first also starts
  Ray's workers, as once per training run: timed apart);
- baseline: `torch.utils.data.DataLoader(num_workers=2)` over an `IterableDataset` whose
  workers split the Parquet files between them and decode a row group at a time.

Interleaved rounds (DataLoader, Ray Data, ...), one epoch each (the same images on both sides);
prints batches/s of each (images / batch size / s),
the median ratio (Ray Data / DataLoader) with its range.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

OUT = Path(__file__).resolve().parent / "out"
SIZE = 32


def build_lake(n: int) -> Path:
    """Fashion-MNIST test images as a labelled, split lake (written once)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's jobs/
    from jobs import import_labels, ingest, ontology, review, split
    from smartray.testing import fashion_mnist

    lake = OUT / f"train-input-lake-{n}"
    if (lake / "splits").exists():
        return lake
    shutil.rmtree(lake, ignore_errors=True)
    src = OUT / f"train-input-src-{n}"
    shutil.rmtree(src, ignore_errors=True)
    images, labels = fashion_mnist.load("test")
    fashion_mnist.write_pngs(src, images[:n], labels[:n])
    ingest.main([str(src), "--lake", str(lake), "--no-blur"])
    ontology.main(["add", "schemas/ontologies/fashion-mnist.yaml", "--lake", str(lake)])
    import_labels.main([str(src), "--format", "folders", "--annotator", "fm", "--lake", str(lake)])
    review.main(
        ["--approve", "--reviewer", "b", "--where", "annotator = 'fm'", "--lake", str(lake)]
    )
    split.main(["--split", "bench", "--no-groups", "--ratios", "train=0.9,val=0.1",
                "--lake", str(lake)])  # fmt: skip
    return lake


class LakeFiles(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """The training rows of the given Parquet files, decoded; files split across workers."""

    def __init__(self, files: list[str], labels: pa.Table, ops: list[dict[str, Any]]):
        self.files, self.labels, self.ops = files, labels, ops

    def __iter__(self) -> Any:
        from smartray.sanitize.cv import pin_threads
        from smartray.train.inputs import decode_batch

        pin_threads()
        info = torch.utils.data.get_worker_info()
        mine = self.files if info is None else self.files[info.id :: info.num_workers]
        for path in mine:
            pf = pq.ParquetFile(path)
            for g in range(pf.num_row_groups):
                table = pf.read_row_group(g, columns=["asset_id", "data"])
                out = decode_batch(table, labels=self.labels, image_size=SIZE, ops=self.ops)
                for img, label in zip(out["image"], out["label"], strict=True):
                    yield torch.from_numpy(img), int(label)


def run_loader(files: list[str], labels: pa.Table, ops: list, batch: int) -> tuple[float, int]:
    loader = torch.utils.data.DataLoader(
        LakeFiles(files, labels, ops), batch_size=batch, num_workers=2
    )
    t0 = time.perf_counter()
    count = sum(len(labels) for _, labels in loader)
    return time.perf_counter() - t0, count


def run_ray(lake_uri: str, version: int, labels: pa.Table, ops: list, batch: int) -> tuple:
    import ray

    from smartray.tables import Lake
    from smartray.train import TrainConfig
    from smartray.train.pipeline import stream

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t0
    try:
        config = TrainConfig(split="bench", image_size=SIZE)
        times, count = [], 0
        for epoch in range(2):  # the first epoch also starts the workers: timed apart
            ds = stream(Lake(lake_uri), version, labels, config, epoch, ops)
            t0 = time.perf_counter()
            batches = ds.iter_torch_batches(batch_size=batch, local_shuffle_buffer_size=2048)
            count = sum(len(b["label"]) for b in batches)
            times.append(time.perf_counter() - t0)
        return times[1], count, init_s, times[0]
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    from smartray.annotate.ledger import ontology_for
    from smartray.augment.ops import parse_ops
    from smartray.tables import Lake
    from smartray.train.inputs import LABEL_COLUMNS, SPLIT_COLUMNS, select

    lake_dir = build_lake(args.images)
    lake = Lake(lake_dir)
    version = lake.version("assets")
    chosen = select(
        lake.table("labels", columns=LABEL_COLUMNS),
        lake.table("splits", columns=SPLIT_COLUMNS),
        ontology=ontology_for(lake, None, None),
        split="bench",
    )
    # the pinned version's Parquet files (paths inside the table's folder)
    files = sorted(str(lake_dir / "assets" / f) for f in lake.dataset("assets", version).files)
    ops = parse_ops("crop:0.9,jitter:0.1")
    rows = []
    for i in range(args.runs):
        loader_s, loader_n = run_loader(files, chosen.train, ops, args.batch_size)
        ray_s, ray_n, init_s, first_s = run_ray(
            str(lake_dir), version, chosen.train, ops, args.batch_size
        )
        assert loader_n == ray_n, (loader_n, ray_n)
        bs = args.batch_size
        row = {"round": i + 1, "images": ray_n, "dataloader_batches_s": loader_n / bs / loader_s,
               "ray_batches_s": ray_n / bs / ray_s, "ratio": loader_s / ray_s,
               "ray_init_s": init_s, "ray_first_epoch_s": first_s}  # fmt: skip
        rows.append(row)
        print(
            f"round {i + 1}: {ray_n} images in batches of {bs}; DataLoader(2 workers) "
            f"{row['dataloader_batches_s']:.1f} batches/s, Ray Data "
            f"{row['ray_batches_s']:.1f} batches/s; ratio {row['ratio']:.3f} "
            f"(ray.init {init_s:.1f} s and the first epoch {first_s:.1f} s, starting the "
            "workers, not counted)",
            flush=True,
        )
    ratios = [r["ratio"] for r in rows]
    print(f"== median ratio {np.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    import gc

    gc.collect()


if __name__ == "__main__":
    sys.exit(main())
