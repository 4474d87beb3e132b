"""Near-duplicate grouping: quality on real photos, and scale against all-pairs numpy.

    .venv/bin/python bench/dedup.py quality [--threshold T --bands B --bits K]
    .venv/bin/python bench/dedup.py scale [--n 1000000 --baseline-n 100000]

quality: 500 non-overlapping 80x80 crops of the photos that ship in scikit-image and
scikit-learn (crops with some texture: gray std > 8), each with four variants (JPEG
quality 50, resized to 50 %, a 5 % crop, +10 % brightness), hashed exactly as ingest
hashes (phash and dhash of the gray image), grouped with smartray's LSH. Reports the
recall of variant-to-original pairs (same group) and the false-pair rate: the share of
originals grouped with another original.

scale: synthetic signatures (two random 64-bit hashes each) with planted clusters
(members a few bits from their centre); the grouping runs through Ray tasks on a local
Ray, as `smartray curate` does. In the same run, an all-pairs numpy baseline (what
in-memory tools do) at `--baseline-n`; prints time, peak memory and the ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpy as np

from smartray.curate import lsh
from smartray.curate.groups import component_labels
from smartray.sanitize.cv import cv2
from smartray.sanitize.hashes import dhash, phash

CROP = 80
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina",
          "camera", "coins", "immunohistochemistry", "moon", "brick", "grass", "gravel",
          "cell", "clock")  # fmt: skip


def _photos() -> list[np.ndarray]:
    from skimage import data
    from sklearn.datasets import load_sample_images

    grays = []
    images = [getattr(data, name)() for name in PHOTOS]
    images.append(data.stereo_motorcycle()[0])  # one view only: the pair is a near-duplicate
    images += list(load_sample_images().images)
    for im in images:
        grays.append(im if im.ndim == 2 else cv2.cvtColor(im[..., :3], cv2.COLOR_RGB2GRAY))
    return grays


def crops(n: int = 500, seed: int = 0) -> list[np.ndarray]:
    """`n` non-overlapping textured crops of the packaged photos."""
    found = []
    for gray in _photos():
        for y in range(0, gray.shape[0] - CROP + 1, CROP):
            for x in range(0, gray.shape[1] - CROP + 1, CROP):
                c = gray[y : y + CROP, x : x + CROP]
                if c.std() > 8:
                    found.append(np.ascontiguousarray(c))
    pick = np.random.default_rng(seed).choice(len(found), size=n, replace=False)
    return [found[i] for i in sorted(pick)]


def variants(crop: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """JPEG q50, 50 % resize, 5 % crop (random offset), +10 % brightness."""
    h, w = crop.shape
    _, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 50])
    dy, dx = round(h * 0.05), round(w * 0.05)
    oy, ox = int(rng.integers(0, dy + 1)), int(rng.integers(0, dx + 1))
    return [
        cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE),
        cv2.resize(crop, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
        np.ascontiguousarray(crop[oy : oy + h - dy, ox : ox + w - dx]),
        np.clip(crop.astype(np.float32) * 1.1, 0, 255).astype(np.uint8),
    ]


def quality(
    threshold: int,
    bands: int,
    bits: int,
    seed: int = 0,
    hashes: str = "phash,dhash",
    max_word: int = 64,
) -> dict[str, float]:
    originals = crops(seed=seed)
    rng = np.random.default_rng(seed + 1)
    images, parent = [], []
    for i, c in enumerate(originals):
        images.append(c)
        parent.append(-1)
        for v in variants(c, rng):
            images.append(v)
            parent.append(i)
    fns = {"phash": phash, "dhash": dhash}
    sig = lsh.signatures(*([fns[h](g) for g in images] for h in hashes.split(",")))
    positions = lsh.band_positions(bands, bits, 64 * sig.shape[0])
    pairs = lsh.near_pairs(sig, positions, threshold, max_word=max_word)
    labels = component_labels(len(images), pairs)
    orig_rows = [i for i, p in enumerate(parent) if p == -1]
    label_of_original = labels[orig_rows]
    found = sum(labels[i] == label_of_original[p] for i, p in enumerate(parent) if p >= 0)
    n_variants = sum(p >= 0 for p in parent)
    counts = np.bincount(label_of_original, minlength=labels.max() + 1)
    false = float(np.mean(counts[label_of_original] > 1))
    return {"recall": found / n_variants, "false_pairs": false, "pairs": float(len(pairs))}


def planted(n: int, seed: int = 0, cluster_share: float = 0.3, max_flip: int = 12) -> np.ndarray:
    """`n` 128-bit signatures: 30 % in clusters of 2-10, members <= `max_flip` bits away."""
    rng = np.random.default_rng(seed)
    sig = rng.integers(0, 2**64, size=(2, n), dtype=np.uint64)
    done = 0
    target = int(n * cluster_share)
    while done < target:
        size = int(rng.integers(2, 11))
        rows = np.arange(done, min(done + size, n))
        centre = sig[:, rows[0]].copy()
        for r in rows[1:]:
            flips = rng.choice(128, size=int(rng.integers(0, max_flip + 1)), replace=False)
            member = centre.copy()
            for f in flips:
                member[f // 64] ^= np.uint64(1) << np.uint64(f % 64)
            sig[:, r] = member
        done += size
    return sig


def all_pairs(sig: np.ndarray, threshold: int, max_word: int = 64, block: int = 512) -> int:
    """Every pair compared in numpy blocks (the in-memory baseline); returns pairs found."""
    n = sig.shape[1]
    found = 0
    for start in range(0, n, block):
        a = sig[:, start : start + block]
        dist = np.zeros((a.shape[1], n), dtype=np.uint8)
        ok = np.ones((a.shape[1], n), dtype=bool)
        for w in range(sig.shape[0]):
            d = np.bitwise_count(a[w][:, None] ^ sig[w][None, :]).astype(np.uint8)
            dist += d
            ok &= d <= max_word
        found += int(np.count_nonzero(np.triu((dist <= threshold) & ok, k=start + 1)))
    return found


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale(
    n: int, baseline_n: int, threshold: int, bands: int, bits: int, max_word: int = 64
) -> None:
    import ray

    from smartray.curate.pipeline import distributed_pairs

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    worker_peak = ray.remote(num_cpus=1)(_peak_mib)
    sigs = {size: planted(size) for size in (baseline_n, n)}
    base_rss = _peak_mib()
    times = {}
    for size, sig in sigs.items():
        t0 = time.perf_counter()
        pairs = distributed_pairs(
            sig, threshold=threshold, bands=bands, bits=bits, max_word=max_word
        )
        labels = component_labels(size, pairs)
        times[size] = time.perf_counter() - t0
        groups = len(np.unique(labels))
        print(
            f"n={size:,}: smartray LSH {times[size]:.2f} s, {len(pairs):,} pairs, {groups:,} groups"
        )
        if size == baseline_n:
            found = len(pairs)
    workers = max(ray.get([worker_peak.remote() for _ in range(4)]))
    print(
        f"peak RSS: driver {_peak_mib():,.0f} MiB (of which input signatures and set-up "
        f"{base_rss:,.0f}), each worker at most {workers:,.0f} MiB"
    )
    ray.shutdown()
    tracemalloc.start()
    t0 = time.perf_counter()
    exact = all_pairs(sigs[baseline_n], threshold, max_word)
    t_all = time.perf_counter() - t0
    peak_all = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(
        f"n={baseline_n:,}: all-pairs numpy {t_all:.2f} s (one core: numpy's element-wise "
        f"ops do not thread), peak {peak_all:,.0f} MiB in {512}-row blocks, {exact:,} pairs; "
        f"ratio {t_all / times[baseline_n]:.1f}x, LSH found {found / max(exact, 1):.4f} of them"
    )
    print(
        f"cores {os.cpu_count()}, {bands} bands x {bits} bits, threshold {threshold}, "
        f"at most {max_word} per hash"
    )


def main() -> None:
    from smartray.curate.config import CurateConfig

    d = CurateConfig()
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["quality", "scale"])
    ap.add_argument("--threshold", type=int, default=d.threshold)
    ap.add_argument("--bands", type=int, default=d.bands)
    ap.add_argument("--bits", type=int, default=d.band_bits)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--baseline-n", type=int, default=100_000)
    ap.add_argument("--hashes", default="phash,dhash", help="quality: phash, dhash or both")
    ap.add_argument("--max-hash-bits", type=int, default=d.max_hash_bits)
    args = ap.parse_args()
    if args.what == "quality":
        print(
            f"{args.hashes}: threshold {args.threshold} (at most {args.max_hash_bits} per "
            f"hash), {args.bands} bands x {args.bits} bits"
        )
        for seed in (0, 1, 2):  # which 500 crops, and the crop offsets
            r = quality(args.threshold, args.bands, args.bits, seed=seed, hashes=args.hashes,
                        max_word=args.max_hash_bits)  # fmt: skip
            print(
                f"  seed {seed}: recall {r['recall']:.4f}, false pairs {r['false_pairs']:.4f} "
                f"({r['pairs']:.0f} near pairs)"
            )
    else:
        scale(args.n, args.baseline_n, args.threshold, args.bands, args.bits, args.max_hash_bits)


if __name__ == "__main__":
    main()
