"""Ingest throughput: smartray on Ray against a plain multiprocessing.Pool, same work.

    .venv/bin/python bench/ingest.py [--corpus photos|fashion|both] [--runs 3]
        [--images 5000] [--blur-images 0] [--json FILE]

Two corpora, each run in the same process and on the same files:

- `photos`: 1280x720 JPEGs generated from real photos that ship in scikit-image and
  scikit-learn (random crops, scale, colour jitter and noise, so every hash differs);
- `fashion`: all 70,000 Fashion-MNIST images (Debian's `dataset-fashion-mnist`) as
  28x28 PNGs in class folders, the small-image case.

Per corpus, interleaved rounds (baseline, smartray, baseline, smartray, ...; this VM's
speed drifts by tens of percent between minutes):

- baseline: `multiprocessing.Pool(cpus)` doing the same per-image work (read, sha256,
  decode, orientation, metrics, hashes, descriptor, re-encode, thumbnail; faces and plates
  when blurring is on), with no Ray running, no Delta; the results are thrown away;
- smartray: `smartray.ingest.ingest` into a fresh local lake (the same work plus Parquet
  parts, reconciliation and the Delta commits) on a freshly started local Ray: its
  workers start inside the timed call; `ray.init` itself is timed apart and not counted.

For each side: end to end (call to return), the fixed cost (call to the first task
starting) and the steady state (from the first task starting to the last one ending);
then the median ratio of each, with its range, and the peak resident memory of each
side's processes (driver + workers; for smartray also raylet, GCS and Ray's agents).
The same allocator settings apply to both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

# glibc reads these when a process starts: a fork (Pool) inherits the parent's allocator
# as it was set up, so the benchmark re-executes itself with them set, and both sides run
# with the same settings (Ray workers get them through runtime_env.env_vars).
MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": "100000000",
    "MALLOC_TRIM_THRESHOLD_": "1000000000",
    "MALLOC_TOP_PAD_": "100000000",
}
if any(os.environ.get(k) != v for k, v in MALLOC.items()):
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC})

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from smartray.sanitize import SanitizeConfig, sanitize_image  # noqa: E402
from smartray.sanitize.cv import cv2, pin_threads  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
W, H = 1280, 720


def _sources() -> list[np.ndarray]:
    import skimage.data as sk
    from sklearn.datasets import load_sample_images

    names = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina",
             "immunohistochemistry")  # fmt: skip
    photos = [getattr(sk, n)() for n in names]
    photos += list(load_sample_images().images)
    return [cv2.cvtColor(np.asarray(p), cv2.COLOR_RGB2BGR) for p in photos]


def _make(args: tuple[int, str]) -> None:
    i, folder = args
    rng = np.random.default_rng(i)
    src = _SOURCES[i % len(_SOURCES)]
    h, w = src.shape[:2]
    scale = rng.uniform(0.55, 1.0)
    ch, cw = max(32, int(h * scale)), max(32, int(min(w, h * W / H) * scale))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = cv2.resize(src[y : y + ch, x : x + cw], (W, H), interpolation=cv2.INTER_CUBIC)
    gain = rng.uniform(0.8, 1.2, size=3).astype(np.float32)
    noisy = crop.astype(np.float32) * gain + rng.normal(0, 4, crop.shape).astype(np.float32)
    img = np.clip(noisy, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(80, 95))])
    assert ok
    (Path(folder) / f"img{i:05d}.jpg").write_bytes(buf.tobytes())


def _init_maker() -> None:
    global _SOURCES
    pin_threads()
    _SOURCES = _sources()


def generate(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.jpg")))
    if have != n:
        shutil.rmtree(folder)
        folder.mkdir(parents=True)
        with mp.Pool(os.cpu_count(), initializer=_init_maker) as pool:
            pool.map(_make, [(i, str(folder)) for i in range(n)], chunksize=32)
    return folder


_CONFIG: SanitizeConfig | None = None


def _init_worker(blur: bool) -> None:
    global _CONFIG
    pin_threads()
    _CONFIG = SanitizeConfig(blur=blur)


def _baseline_one(path: str) -> float:
    """Does one image's work; returns when it started (wall clock)."""
    assert _CONFIG is not None
    started = time.time()
    with open(path, "rb") as f:
        data = f.read()
    hashlib.sha256(data).hexdigest()
    sanitize_image(data, config=_CONFIG, name=os.path.basename(path))
    return started


class PeakRss:
    """Samples the summed RSS of this process and its descendants (or given roots)."""

    def __init__(self, extra_roots: list[int] | None = None):
        self.extra_roots = extra_roots or []
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _procs(self) -> list[psutil.Process]:
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        for pid in self.extra_roots:
            try:
                root = psutil.Process(pid)
                procs += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return list({p.pid: p for p in procs}.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for p in self._procs():
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_baseline(files: list[str], blur: bool, cpus: int) -> dict[str, float]:
    """Seconds end to end, to the first image starting, from then on; and peak RSS."""
    with PeakRss() as mem:
        called = time.time()
        first = math.inf
        with mp.Pool(cpus, initializer=_init_worker, initargs=(blur,)) as pool:
            for started in pool.imap_unordered(_baseline_one, files, chunksize=16):
                first = min(first, started)
            done = time.time()
    return {"total_s": done - called, "first_task_s": first - called,
            "tasks_s": done - first, "peak_rss": mem.peak}  # fmt: skip


def run_smartray(folder: Path, lake: Path, blur: bool, cpus: int) -> tuple[dict[str, float], dict]:
    """Starts a local Ray, ingests `folder` into a fresh lake, stops Ray: figures, counts."""
    import ray

    from smartray.ingest import IngestConfig, ingest

    shutil.rmtree(lake, ignore_errors=True)
    t0 = time.perf_counter()
    # Workers of a local Ray inherit this process's environment, allocator settings included.
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - t0
    roots = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(k in " ".join(p.info["cmdline"] or []) for k in ("raylet", "gcs_server"))
    ]
    cfg = IngestConfig(sources=(str(folder),), lake=str(lake), sanitize=SanitizeConfig(blur=blur))
    try:
        with PeakRss(extra_roots=roots) as mem:
            summary = ingest(cfg)
    finally:
        ray.shutdown()
    figures = {k: summary.timing[k] for k in ("total_s", "first_task_s", "tasks_s")}
    return {**figures, "peak_rss": mem.peak, "ray_init_s": ray_init_s,
            "tasks": summary.timing["tasks"]}, summary.counts  # fmt: skip


def fashion_corpus(folder: Path) -> Path:
    """All 70,000 Fashion-MNIST images as 28 px PNGs in class folders (written once)."""
    from smartray.testing import fashion_mnist

    if len(list(folder.glob("*/*.png"))) == 70_000:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    for split in ("train", "test"):
        images, labels = fashion_mnist.load(split)
        fashion_mnist.write_pngs(folder, images, labels, prefix=f"{split}-")
    return folder


def _median(xs: list[float]) -> float:
    return float(np.median(xs))


def _one_side(args: argparse.Namespace) -> None:
    """`--side baseline|smartray`: one measurement in a fresh process; prints its JSON."""
    folder = Path(args.folder)
    files = sorted(str(p) for p in folder.rglob("*") if p.suffix in (".jpg", ".png"))
    if args.side == "baseline":
        figures, counts = run_baseline(files, args.blur, args.cpus), {}
    else:
        figures, counts = run_smartray(folder, OUT / "lake", args.blur, args.cpus)
    print(json.dumps({"figures": figures, "counts": counts, "images": len(files)}))


def _measure(side: str, folder: Path, blur: bool, cpus: int) -> tuple[dict, dict]:
    """Runs one side in a child process (its memory and Ray its own); figures, counts."""
    cmd = [sys.executable, __file__, "--side", side, "--folder", str(folder), "--cpus", str(cpus)]
    out = subprocess.run(cmd + (["--blur"] if blur else []), capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{side} failed:\n{out.stderr[-3000:]}")
    last = json.loads(out.stdout.strip().splitlines()[-1])
    return last["figures"], last["counts"]


def _warm_cache(files: list[str]) -> None:
    """Reads every file once, so the first round's side does not pay a cold page cache."""
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 20):
                pass


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", choices=["photos", "fashion", "both"], default="both")
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds per corpus")
    ap.add_argument("--images", type=int, default=5000, help="photos: how many")
    ap.add_argument("--blur-images", type=int, default=0, help="photos with face blur on")
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--side", choices=["baseline", "smartray"], help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--blur", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    if args.side:
        _one_side(args)
        return
    cases: list[tuple[str, bool, Path, list[str]]] = []
    if args.corpus in ("photos", "both"):
        data = generate(OUT / f"jpeg1280x720-{args.images}", args.images)
        files = sorted(str(p) for p in data.glob("*.jpg"))
        cases.append(("photos 1280x720", False, data, files))
        if args.blur_images:
            blur_folder = OUT / f"jpeg1280x720-blur-{args.blur_images}"
            blur_folder.mkdir(parents=True, exist_ok=True)
            for f in files[: args.blur_images]:
                target = blur_folder / os.path.basename(f)
                if not target.exists():
                    os.link(f, target)
            cases.append(("photos, faces blurred", True, blur_folder,
                          sorted(str(p) for p in blur_folder.glob("*.jpg"))))  # fmt: skip
    if args.corpus in ("fashion", "both"):
        data = fashion_corpus(OUT / "fashion-mnist-70k")
        cases.append(
            ("fashion-mnist 28px", False, data, sorted(str(p) for p in data.rglob("*.png")))
        )
    machine = f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB"
    results: dict = {"machine": machine, "runs": []}
    for name, blur, folder, files in cases:
        n = len(files)
        _warm_cache(files)
        rounds = []
        for i in range(args.runs):
            base, _ = _measure("baseline", folder, blur, args.cpus)
            ours, counts = _measure("smartray", folder, blur, args.cpus)
            assert counts["ingested"] + counts["duplicates"] == n, counts
            row = {"round": i + 1, "baseline": base, "smartray": ours,
                   "ratio_total": base["total_s"] / ours["total_s"],
                   "ratio_steady": base["tasks_s"] / ours["tasks_s"]}  # fmt: skip
            rounds.append(row)
            print(
                f"{name} ({n:,}) round {i + 1}: baseline {n / base['total_s']:.0f} img/s "
                f"(first image at {base['first_task_s']:.2f} s), smartray "
                f"{n / ours['total_s']:.0f} img/s (first task at {ours['first_task_s']:.2f} s, "
                f"{ours['tasks']:.0f} tasks, steady {n / ours['tasks_s']:.0f} img/s against "
                f"{n / base['tasks_s']:.0f}); ratio end to end {row['ratio_total']:.3f}, "
                f"steady {row['ratio_steady']:.3f}; peak RSS {base['peak_rss'] / 2**20:.0f} / "
                f"{ours['peak_rss'] / 2**20:.0f} MiB; ray.init {ours['ray_init_s']:.1f} s",
                flush=True,
            )
        summary = {"case": name, "images": n, "rounds": rounds}
        for key in ("ratio_total", "ratio_steady"):
            xs = [r[key] for r in rounds]
            summary[key] = {"median": _median(xs), "min": min(xs), "max": max(xs)}
        fixed = [r["smartray"]["first_task_s"] for r in rounds]
        summary["fixed_s"] = {"median": _median(fixed), "min": min(fixed), "max": max(fixed)}
        results["runs"].append(summary)
        print(
            f"== {name}: median ratio end to end {summary['ratio_total']['median']:.3f} "
            f"({summary['ratio_total']['min']:.3f}-{summary['ratio_total']['max']:.3f}), "
            f"steady {summary['ratio_steady']['median']:.3f} "
            f"({summary['ratio_steady']['min']:.3f}-{summary['ratio_steady']['max']:.3f}); "
            f"smartray fixed cost {summary['fixed_s']['median']:.2f} s "
            f"({summary['fixed_s']['min']:.2f}-{summary['fixed_s']['max']:.2f})",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    import gc

    gc.collect()


if __name__ == "__main__":
    sys.exit(main())
