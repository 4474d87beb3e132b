"""Training epochs: what waiting for Ray Train to register each epoch's checkpoint costs.

    .venv/bin/python bench/train_report_wait.py [--images 10000] [--epochs 4] [--runs 3]

`smartray train`'s loop (`smartray/train/loop.py`) reports a checkpoint every epoch and
then waits, on every worker, until Ray Train's controller has registered it
(`ray.train.get_all_reported_checkpoints(consistency_mode=COMMITTED)`): without the wait
a worker lost within the controller's poll (~2 s) loses that checkpoint and the restart
redoes the epoch (RELIABILITY.md, training kills). This measures the wait's price on the
whole run:

- smartray: `smartray.train.pipeline.train` as shipped, with the wait timed in each
  worker (a wrapper installed by Ray's `worker_process_setup_hook` that records how long
  each call took);
- baseline: the same run with the wait skipped (the same hook replaces the call by one
  that returns at once), which is what the loop did before.

The lake is `bench/train_input.py`'s (Fashion-MNIST's 10,000 test images, labelled from
their class folders, split 90/10: 8,937 training images), `small-cnn` at 32 px, 1 worker,
the default augmentation. Interleaved rounds (each side first in turn), each on a freshly
started local Ray (2 CPUs) whose start is not counted; the time is `train()`'s call to its
return (workers, every epoch, checkpoints, the `models` commit). Prints each round, the
median ratio (baseline time / smartray time) with its range, and the wait per epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_input import OUT, build_lake


def _hook(mode: str, log_path: str) -> Any:
    """A worker setup hook that times (`timed`) or skips (`skip`) the registration wait."""

    def setup() -> None:
        import ray.train

        real = ray.train.get_all_reported_checkpoints

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            out = real(*args, **kwargs) if mode == "timed" else []
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"mode": mode, "s": time.perf_counter() - t0}) + "\n")
            return out

        ray.train.get_all_reported_checkpoints = wrapped

    return setup


def run_once(lake: Path, mode: str, epochs: int, log_path: Path) -> tuple[float, list[float]]:
    import ray

    from smartray.train import TrainConfig
    from smartray.train.pipeline import train

    log_path.unlink(missing_ok=True)
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
        runtime_env={"worker_process_setup_hook": _hook(mode, str(log_path))},
    )  # fmt: skip
    try:
        config = TrainConfig(split="bench", epochs=epochs, experiment=f"bench-wait-{mode}")
        t0 = time.perf_counter()
        train(config, lake=str(lake))
        took = time.perf_counter() - t0
    finally:
        ray.shutdown()
    calls = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert calls, "the worker setup hook did not run"
    assert all(c["mode"] == mode for c in calls), calls
    return took, [c["s"] for c in calls]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    lake = build_lake(args.images)
    rows = []
    for i in range(args.runs):
        sides = ["skip", "timed"] if i % 2 == 0 else ["timed", "skip"]  # each first in turn
        got = {m: run_once(lake, m, args.epochs, OUT / f"report-wait-{m}.jsonl") for m in sides}
        (base_s, skipped), (ours_s, waits) = got["skip"], got["timed"]
        row = {"round": i + 1, "epochs": args.epochs, "baseline_s": base_s, "smartray_s": ours_s,
               "ratio": base_s / ours_s, "waits_s": waits,
               "calls_skipped": len(skipped)}  # fmt: skip
        rows.append(row)
        print(
            f"round {i + 1}: {args.epochs} epochs; without the wait {base_s:.1f} s, with it "
            f"{ours_s:.1f} s; ratio {row['ratio']:.3f}; waits "
            + ", ".join(f"{w:.2f}" for w in waits)
            + " s",
            flush=True,
        )
    ratios = [r["ratio"] for r in rows]
    waits = [w for r in rows for w in r["waits_s"]]
    print(
        f"== median ratio {np.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}); "
        f"wait per epoch median {np.median(waits):.2f} s ({min(waits):.2f}-{max(waits):.2f})"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    import gc

    gc.collect()


if __name__ == "__main__":
    sys.exit(main())
