"""GPU feeding: ResNet-18 fed from the lake's Parquet against synthetic tensors on the GPU.

    # here (needs the lake): the training rows of a pinned lake as one Parquet file
    .venv/bin/python bench/gpu_train.py export [--images 10000]
    # on the GPU machine (pyarrow, cv2 and torch; no Ray, no deltalake): bench/gpu_train.sh
    python3 bench/gpu_train.py run --data bench/out/gpu-data [--device cuda]

`export` builds (once) the Fashion-MNIST lake of `bench/train_input.py`, selects its
training rows as `smartray train` does and writes `asset_id`, `data` (the stored PNG
bytes) and `label` to `bench/out/gpu-data/train.parquet` in row groups of 512: what a
GPU machine without Ray or deltalake can read with pyarrow alone.

`run` trains ResNet-18 (`smartray.train.nets`, SGD, bf16 autocast and channels-last on
CUDA) for `--steps` steps on each side, interleaved, `--runs` rounds:

- fed: a `torch.utils.data.DataLoader` (`--workers` processes, pinned memory) whose
  workers read row groups with pyarrow and run `smartray.train.inputs.decode_batch`
  (decode, `crop:0.9,jitter:0.1`, resize to `--image-size`, uint8), copied to the
  device and normalised there, as `smartray train` does;
- bound: one batch of random tensors already on the device, the upper bound.

Each side's first `--warmup` steps are not timed. Prints images/s of both and the
median ratio (fed / bound) with its range. Goal: >= 0.9.
"""

from __future__ import annotations

import argparse
import json
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
DATA = HERE / "out" / "gpu-data"
OPS = "crop:0.9,jitter:0.1"


def export(images: int, out: Path) -> None:
    """Writes the pinned lake's training rows (`asset_id`, `data`, `label`) to `out`."""
    sys.path.insert(0, str(HERE))
    from train_input import build_lake  # the same lake as the input benchmark

    from smartray.annotate.ledger import ontology_for
    from smartray.tables import Lake
    from smartray.train.inputs import LABEL_COLUMNS, SPLIT_COLUMNS, select

    lake = Lake(build_lake(images))
    chosen = select(
        lake.table("labels", columns=LABEL_COLUMNS),
        lake.table("splits", columns=SPLIT_COLUMNS),
        ontology=ontology_for(lake, None, None),
        split="bench",
    )
    assets = lake.table("assets", lake.version("assets"), columns=["asset_id", "data"])
    rows = assets.join(chosen.train, "asset_id", join_type="inner").sort_by("asset_id")
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, out / "train.parquet", row_group_size=512)
    print(f"wrote {rows.num_rows} training rows ({rows.nbytes / 2**20:.1f} MiB) to {out}")


class RowGroups(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """Row groups of one Parquet file, decoded by `decode_batch`, endlessly, split by worker."""

    def __init__(self, path: Path, image_size: int, ops: str = OPS):
        self.path, self.image_size, self.ops = path, image_size, ops

    def __iter__(self) -> Any:
        from smartray.augment.ops import parse_ops
        from smartray.train.inputs import decode_batch

        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        f = pq.ParquetFile(self.path)
        labels = f.read(columns=["asset_id", "label"])
        ops = parse_ops(self.ops) if self.ops else []
        epoch = 0
        while True:
            for g in range(worker, f.num_row_groups, workers):
                batch = f.read_row_group(g, columns=["asset_id", "data"])
                out = decode_batch(batch, labels=labels, image_size=self.image_size,
                                   ops=ops, seed=0, epoch=epoch)  # fmt: skip
                yield torch.from_numpy(out["image"]), torch.from_numpy(out["label"])
            epoch += 1


def batches(path: Path, image_size: int, batch_size: int, workers: int, ops: str = OPS) -> Any:
    """Endless (images uint8 [B,3,S,S], labels [B]) batches from the Parquet file."""
    from torch.utils.data import DataLoader

    loader = DataLoader(RowGroups(path, image_size, ops), batch_size=None, num_workers=workers,
                        pin_memory=torch.cuda.is_available(), prefetch_factor=4,
                        persistent_workers=True)  # fmt: skip
    images: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    held = 0
    for x, y in loader:  # row groups (512) re-cut into batches
        images.append(x)
        labels.append(y)
        held += len(y)
        while held >= batch_size:
            xs, ys = torch.cat(images), torch.cat(labels)
            yield xs[:batch_size], ys[:batch_size]
            images, labels, held = [xs[batch_size:]], [ys[batch_size:]], held - batch_size


def steps(model: torch.nn.Module, feed: Any, n: int, warmup: int, device: torch.device) -> float:
    """Images per second of `n` training steps after `warmup` untimed ones."""
    from smartray.train.inputs import normalize

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    cuda = device.type == "cuda"
    seen, start = 0, 0.0
    for i in range(warmup + n):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
            start, seen = time.perf_counter(), 0
        x, y = next(feed)
        x = normalize(x.to(device, non_blocking=True))
        y = y.to(device, non_blocking=True)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(y)
    if cuda:
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> None:
    from smartray.train import nets

    device = torch.device(args.device)
    path = args.data / "train.parquet"
    meta = pq.ParquetFile(path).metadata
    classes = int(pc.max(pq.read_table(path, columns=["label"])["label"]).as_py()) + 1
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}; {meta.num_rows} images, {classes} classes; ResNet-18 at "
          f"{args.image_size} px, batch {args.batch_size}, {args.workers} loader workers",
          flush=True)  # fmt: skip
    torch.manual_seed(0)
    model = nets.build("resnet18", classes).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    model.train()
    fed = batches(path, args.image_size, args.batch_size, args.workers)
    s = args.image_size
    x = torch.randint(0, 256, (args.batch_size, 3, s, s), dtype=torch.uint8, device=device)
    y = torch.randint(0, classes, (args.batch_size,), device=device)

    def synthetic() -> Any:
        while True:
            yield x, y

    bound = synthetic()
    rows = []
    for r in range(args.runs):
        fed_ips = steps(model, fed, args.steps, args.warmup, device)
        bound_ips = steps(model, bound, args.steps, args.warmup, device)
        rows.append({"round": r + 1, "fed_images_s": fed_ips, "bound_images_s": bound_ips,
                     "ratio": fed_ips / bound_ips})  # fmt: skip
        print(f"round {r + 1}: fed {fed_ips:.0f} images/s, synthetic on the device "
              f"{bound_ips:.0f} images/s, ratio {fed_ips / bound_ips:.3f}", flush=True)  # fmt: skip
    report(rows, name, args.json)


def report(rows: list[dict[str, Any]], device: str, out: Path | None) -> None:
    """Prints the rounds' median ratio with its range; writes them to `out` as JSON."""
    ratios = [row["ratio"] for row in rows]
    print(f"== median ratio {np.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"device": device, "rounds": rows}, indent=2))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write the lake's training rows to Parquet (here)")
    ex.add_argument("--images", type=int, default=10_000)
    ex.add_argument("--out", type=Path, default=DATA)
    rn = sub.add_parser("run", help="time fed against synthetic training (GPU machine)")
    rn.add_argument("--data", type=Path, default=DATA)
    rn.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    rn.add_argument("--image-size", type=int, default=224)
    rn.add_argument("--batch-size", type=int, default=256)
    rn.add_argument("--workers", type=int, default=12)
    rn.add_argument("--steps", type=int, default=60)
    rn.add_argument("--warmup", type=int, default=10)
    rn.add_argument("--runs", type=int, default=3)
    rn.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.command == "export":
        export(args.images, args.out)
        import gc

        gc.collect()  # a process that read a Delta table can abort at exit otherwise
    else:
        run(args)


if __name__ == "__main__":
    main()
