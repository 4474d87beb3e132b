"""Ingest throughput: smartray on Ray against a plain multiprocessing.Pool, same work.

    .venv/bin/python bench/ingest.py [--images 5000] [--blur-images 1000]

Generates 1280x720 JPEGs from real photos that ship in scikit-image and scikit-learn
(random crops, scale, colour jitter and noise, so every hash differs), then, in the same
run and on the same files:

- baseline: `multiprocessing.Pool(cpus)` doing the same per-image work (read, sha256,
  decode, orientation, metrics, hashes, re-encode, thumbnail; faces and plates when
  blurring is on) with no Ray and no Delta: the results are thrown away;
- smartray: `smartray.ingest.ingest` into a fresh local lake (the same work plus Parquet
  parts, reconciliation and the Delta commits), timed from the call to its return with
  Ray already running (a fresh local Ray: the job's workers and Ray Data's actors still
  start inside the timed call); the time `ray.init` took is printed on its own.

Prints images/s for both, the ratio, and the peak resident memory of each side's
processes (driver + workers). The same allocator settings apply to both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import shutil
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


def _baseline_one(path: str) -> int:
    assert _CONFIG is not None
    with open(path, "rb") as f:
        data = f.read()
    hashlib.sha256(data).hexdigest()
    row = sanitize_image(data, config=_CONFIG, name=os.path.basename(path))
    return len(row["data"])


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


def run_baseline(files: list[str], blur: bool, cpus: int) -> tuple[float, int]:
    with PeakRss() as mem:
        t0 = time.perf_counter()
        with mp.Pool(cpus, initializer=_init_worker, initargs=(blur,)) as pool:
            for _ in pool.imap_unordered(_baseline_one, files, chunksize=16):
                pass
        wall = time.perf_counter() - t0
    return wall, mem.peak


def run_smartray(
    folder: Path, lake: Path, blur: bool, rows_per_block: int
) -> tuple[float, int, dict]:
    import ray

    from smartray.ingest import IngestConfig, ingest

    shutil.rmtree(lake, ignore_errors=True)
    raylet = [
        p.pid
        for p in psutil.process_iter(["name", "cmdline"])
        if "raylet" in " ".join(p.info["cmdline"] or [])
    ]
    gcs = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if "gcs_server" in " ".join(p.info["cmdline"] or [])
    ]
    cfg = IngestConfig(
        sources=(str(folder),),
        lake=str(lake),
        sanitize=SanitizeConfig(blur=blur),
        rows_per_block=rows_per_block,
    )
    assert ray.is_initialized()
    with PeakRss(extra_roots=raylet + gcs) as mem:
        t0 = time.perf_counter()
        summary = ingest(cfg)
        wall = time.perf_counter() - t0
    return wall, mem.peak, summary.counts


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--blur-images", type=int, default=1000)
    ap.add_argument("--rows-per-block", type=int, default=128)
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("smartray.ingest").setLevel(logging.INFO)

    import ray

    data = generate(OUT / f"jpeg1280x720-{args.images}", args.images)
    files = sorted(str(p) for p in data.glob("*.jpg"))
    blur_folder = OUT / f"jpeg1280x720-blur-{args.blur_images}"
    if args.blur_images:
        blur_folder.mkdir(parents=True, exist_ok=True)
        for f in files[: args.blur_images]:
            target = blur_folder / os.path.basename(f)
            if not target.exists():
                os.link(f, target)
    cases = [(False, args.images, data), (True, args.blur_images, blur_folder)]
    cases = [c for c in cases if c[1]]
    # Baselines first, with no Ray process on the machine at all.
    baselines = {
        blur: run_baseline(sorted(str(p) for p in folder.glob("*.jpg"))[:n], blur, args.cpus)
        for blur, n, folder in cases
    }
    t0 = time.perf_counter()
    # Workers of a local Ray inherit this process's environment, allocator settings included.
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - t0
    results = {"machine": f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB",
               "images": args.images, "ray_init_s": round(ray_init_s, 2), "runs": []}  # fmt: skip
    for blur, n, folder in cases:
        base_s, base_mem = baselines[blur]
        sr_s, sr_mem, counts = run_smartray(folder, OUT / "lake", blur, args.rows_per_block)
        assert counts["ingested"] == n, counts
        row = {
            "blur": blur, "images": n,
            "baseline_img_s": round(n / base_s, 1), "smartray_img_s": round(n / sr_s, 1),
            "ratio": round(base_s / sr_s, 3),
            "baseline_peak_rss_mib": base_mem // 2**20, "smartray_peak_rss_mib": sr_mem // 2**20,
        }  # fmt: skip
        results["runs"].append(row)
        print(
            f"blur={'on ' if blur else 'off'} images={n}: baseline Pool({args.cpus}) "
            f"{row['baseline_img_s']} img/s, smartray {row['smartray_img_s']} img/s, "
            f"ratio {row['ratio']:.3f}; peak RSS baseline {row['baseline_peak_rss_mib']} MiB, "
            f"smartray {row['smartray_peak_rss_mib']} MiB",
            flush=True,
        )
    print(f"ray.init took {ray_init_s:.1f} s (not in the smartray figures above)")
    ray.shutdown()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    import gc

    gc.collect()


if __name__ == "__main__":
    sys.exit(main())
