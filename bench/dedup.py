"""Near-duplicate grouping: quality on three real corpora, and scale against all-pairs numpy.

    .venv/bin/python bench/dedup.py quality [--corpus photos,fashion28,fashion100,lfw25,lfw100]
                                            [--rule stars|components] [--confirm-threshold T]
    .venv/bin/python bench/dedup.py classes [--side 28]
    .venv/bin/python bench/dedup.py scale [--n 1000000 --baseline-n 100000]

quality: originals of a corpus, a number of them with four planted near-copies each
(`smartray.testing.nearcopies`: re-encoded JPEG, brightness/contrast, a small crop scaled
back, a small rotation), hashed and described exactly as ingest does (phash, dhash and the
32x32 descriptor of the gray image), grouped as `smartray curate` groups them (`--rule
stars`: hash LSH candidates confirmed on pixels, star groups; `--rule components`: the old
connected components of hash pairs). Corpora: 500 textured 80x80 crops of the photos in
scikit-image and scikit-learn (all planted); Fashion-MNIST's 10,000 test images at 28 px
or upscaled to 100 px (500 planted); scikit-image's `lfw_subset` 200 images, 100 faces
(different photos of one person are hard negatives) at 25 px or 100 px (all planted).
Reports the recall of copies (grouped with their original), the share of originals that
share a group with another original, the largest group, and the cost.

classes: Fashion-MNIST's test set, nothing planted: the class labels are a second truth.
Reports the share of near pairs (each member with its group's representative) whose two
images are of different classes, and the groups that span classes.

scale: synthetic signatures (two random 64-bit hashes each) with planted clusters
(members a few bits from their centre) and synthetic descriptors (each cluster's members
a re-noised, sometimes shifted copy of a random texture); candidates through Ray tasks
and confirmation through Ray tasks, as `smartray curate` does. In the same run, an
all-pairs numpy baseline of the hash stage (what in-memory tools do) at `--baseline-n`;
prints time, peak memory and the ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import multiprocessing.pool
import os
import resource
import time
import tracemalloc

import numpy as np

from smartray.curate import confirm, lsh
from smartray.curate.config import CurateConfig
from smartray.curate.groups import component_labels, star_groups
from smartray.curate.pipeline import candidate_rows
from smartray.sanitize.cv import cv2
from smartray.sanitize.descriptor import descriptor
from smartray.sanitize.hashes import dhash, phash
from smartray.testing import fashion_mnist
from smartray.testing.nearcopies import near_copies

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


def corpus(name: str, seed: int) -> tuple[list[np.ndarray], np.ndarray | None, int]:
    """Originals of a corpus (gray images), their class labels if known, and how many of
    them get planted near-copies."""
    if name == "photos":
        return crops(seed=seed), None, 500
    if name.startswith("fashion"):
        side = int(name.removeprefix("fashion") or 28)
        images, labels = fashion_mnist.load("test")
        return [fashion_mnist.resize(im, side) for im in images], labels, 500
    if name.startswith("lfw"):
        from skimage.data import lfw_subset

        side = int(name.removeprefix("lfw") or 25)
        faces = (lfw_subset() * 255).astype(np.uint8)
        return (
            [cv2.resize(f, (side, side), interpolation=cv2.INTER_CUBIC) for f in faces],
            None,
            200,
        )
    raise SystemExit(f"unknown corpus {name!r}")


def hashed(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Signatures and descriptors as ingest computes them (on the gray image)."""
    sig = lsh.signatures([phash(g) for g in images], [dhash(g) for g in images])
    desc = np.stack([np.frombuffer(descriptor(g), np.uint8) for g in images])
    return sig, desc


_IMAGES: np.ndarray | None = None


def _init_scorer(images: np.ndarray) -> None:
    global _IMAGES
    from smartray.sanitize.cv import pin_threads

    pin_threads()
    _IMAGES = confirm.as_images(images)


def _score(args: tuple[np.ndarray, float, np.ndarray]) -> np.ndarray:
    assert _IMAGES is not None
    return confirm.score_pairs(_IMAGES, *args)


def group(
    sig: np.ndarray,
    desc: np.ndarray,
    cfg: CurateConfig,
    rule: str,
    pool: multiprocessing.pool.Pool | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Groups by the old rule (components of hash pairs) or the new one (hash candidates
    confirmed on pixels, star groups): each row's label, the near pairs the groups were
    made of (old: every hash pair; new: each member with its representative), the cost."""
    n = sig.shape[1]
    positions = lsh.band_positions(cfg.bands, cfg.band_bits, 128)
    t0 = time.perf_counter()
    if rule == "components":
        pairs = lsh.near_pairs(sig, positions, cfg.threshold, max_word=cfg.max_hash_bits)
        labels = component_labels(n, pairs)
        cost = {"pairs": len(pairs), "scored": 0, "seconds": time.perf_counter() - t0}
        return labels, pairs, cost
    uniq, inverse = np.unique(sig.T, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    pairs_u = lsh.near_pairs(np.ascontiguousarray(uniq.T), positions, cfg.threshold,
                             max_word=cfg.max_hash_bits)  # fmt: skip
    candidates = candidate_rows(inverse, pairs_u, None)
    threshold = cfg.confirm_threshold

    def score(batch: np.ndarray) -> np.ndarray:
        need = confirm.needed(lsh.hamming(sig, batch), threshold, cfg.close_bits,
                              cfg.close_confirm_threshold)  # fmt: skip
        if pool is None or len(batch) < 64:
            return confirm.score_pairs(confirm.as_images(desc), batch, threshold, need)
        parts = np.array_split(np.arange(len(batch)), 8)
        return np.concatenate(pool.map(_score, [(batch[p], threshold, need[p]) for p in parts]))

    ids = [f"{i:08d}" for i in range(n)]
    names, scored, confirmed = star_groups(
        ids, np.arange(n), candidates, [None] * n, score, threshold
    )
    labels = np.unique(np.array(names), return_inverse=True)[1].reshape(-1)
    reps = np.array([int(g) for g in names])
    members = np.flatnonzero(reps != np.arange(n))
    near = np.stack([reps[members], members], axis=1)
    return labels, near, {"candidates": len(candidates), "scored": scored, "pairs": confirmed,
                          "seconds": time.perf_counter() - t0}  # fmt: skip


def quality(name: str, cfg: CurateConfig, rule: str, seed: int = 0) -> dict[str, float]:
    """Planted near-copies in a corpus: recall, originals grouped together, largest group."""
    originals, _, planted_n = corpus(name, seed)
    rng = np.random.default_rng(seed + 1)
    images, parent = list(originals), [-1] * len(originals)
    for i in sorted(rng.choice(len(originals), size=planted_n, replace=False).tolist()):
        for copy in near_copies(originals[i], rng):
            images.append(copy)
            parent.append(i)
    sig, desc = hashed(images)
    with mp.get_context("spawn").Pool(2, initializer=_init_scorer, initargs=(desc,)) as pool:
        labels, _, cost = group(sig, desc, cfg, rule, pool)
    n0 = len(originals)
    copies = [(k, p) for k, p in enumerate(parent) if p >= 0]
    recall = float(np.mean([labels[k] == labels[p] for k, p in copies]))
    orig_counts = np.bincount(labels[:n0], minlength=labels.max() + 1)
    together = float(np.mean(orig_counts[labels[:n0]] > 1))
    sizes = np.bincount(labels)
    return {"recall": recall, "originals_grouped": together, "largest": int(sizes.max()),
            "groups_over_5": int(np.count_nonzero(sizes > 5)), **cost}  # fmt: skip


def classes(cfg: CurateConfig, rule: str, side: int = 28) -> dict[str, float]:
    """Unplanted Fashion-MNIST test set: the labels are the truth for reported pairs."""
    images, labels = fashion_mnist.load("test")
    images = [fashion_mnist.resize(im, side) for im in images]
    sig, desc = hashed(images)
    with mp.get_context("spawn").Pool(2, initializer=_init_scorer, initargs=(desc,)) as pool:
        groups, pairs, cost = group(sig, desc, cfg, rule, pool)
    cross = int(np.count_nonzero(labels[pairs[:, 0]] != labels[pairs[:, 1]])) if len(pairs) else 0
    spans = sum(len(set(labels[g].tolist())) > 1 for g in _members(groups))
    sizes = np.bincount(groups)
    return {"near_pairs": len(pairs), "cross_class_share": cross / max(len(pairs), 1),
            "groups_spanning_classes": spans, "largest": int(sizes.max()), **cost}  # fmt: skip


def _members(labels: np.ndarray) -> list[list[int]]:
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    return [g.tolist() for g in np.split(order, cuts) if len(g) > 1]


def planted(
    n: int, seed: int = 0, cluster_share: float = 0.3, max_flip: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """`n` 128-bit signatures, 30 % in clusters of 2-10 whose members are <= `max_flip`
    bits from the first; and each row's cluster number (-1: in none)."""
    rng = np.random.default_rng(seed)
    sig = rng.integers(0, 2**64, size=(2, n), dtype=np.uint64)
    cluster = np.full(n, -1, dtype=np.int64)
    done = 0
    target = int(n * cluster_share)
    while done < target:
        size = int(rng.integers(2, 11))
        rows = np.arange(done, min(done + size, n))
        cluster[rows] = rows[0]
        centre = sig[:, rows[0]].copy()
        for r in rows[1:]:
            flips = rng.choice(128, size=int(rng.integers(0, max_flip + 1)), replace=False)
            member = centre.copy()
            for f in flips:
                member[f // 64] ^= np.uint64(1) << np.uint64(f % 64)
            sig[:, r] = member
        done += size
    return sig, cluster


def planted_descriptors(cluster: np.ndarray, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """Descriptors of `rows`: a random texture per cluster (and per lone row); each member
    re-noised, and one in three shifted by a pixel."""
    out = np.empty((len(rows), 1024), dtype=np.uint8)
    for k, r in enumerate(rows.tolist()):
        key = int(cluster[r]) if cluster[r] >= 0 else r
        texture = np.random.default_rng((seed, key)).uniform(0, 255, (32, 32)).astype(np.float32)
        img = cv2.GaussianBlur(texture, (0, 0), 1.2)
        img = img + np.random.default_rng((seed, key, r)).normal(0, 3, (32, 32))
        if (r - key) % 3 == 2:
            img = np.roll(img, 1, axis=1)
        out[k] = np.clip(img, 0, 255).astype(np.uint8).ravel()
    return out


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


def scale(n: int, baseline_n: int, cfg: CurateConfig) -> None:
    import ray

    from smartray.curate.pipeline import RayScorer, distributed_pairs

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    worker_peak = ray.remote(num_cpus=1)(_peak_mib)
    made = {size: planted(size) for size in (baseline_n, n)}
    sigs = {size: sig for size, (sig, _) in made.items()}
    base_rss = _peak_mib()
    times = {}
    for size, sig in sigs.items():
        t0 = time.perf_counter()
        pairs = distributed_pairs(sig, threshold=cfg.threshold, bands=cfg.bands,
                                  bits=cfg.band_bits, max_word=cfg.max_hash_bits)  # fmt: skip
        t_hash = time.perf_counter() - t0
        rows = np.unique(pairs)
        desc = planted_descriptors(made[size][1], rows)  # candidate rows only, as in curate
        scorer = RayScorer(rows, desc, sig, cfg)
        ids = [f"{i:08d}" for i in range(size)]
        names, scored, confirmed = star_groups(
            ids, np.arange(size), pairs, [None] * size, scorer, cfg.confirm_threshold
        )
        times[size] = time.perf_counter() - t0
        groups = len(set(names))
        print(
            f"n={size:,}: smartray {times[size]:.2f} s (hash LSH {t_hash:.2f} s, "
            f"confirmation and stars {times[size] - t_hash:.2f} s): {len(pairs):,} candidate "
            f"pairs, {scored:,} scored, {confirmed:,} confirmed, {groups:,} groups",
            flush=True,
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
    exact = all_pairs(sigs[baseline_n], cfg.threshold, cfg.max_hash_bits)
    t_all = time.perf_counter() - t0
    peak_all = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(
        f"n={baseline_n:,}: all-pairs numpy (hash stage only) {t_all:.2f} s (one core), peak "
        f"{peak_all:,.0f} MiB in 512-row blocks, {exact:,} pairs; ratio "
        f"{t_all / times[baseline_n]:.1f}x against smartray's whole grouping; LSH found "
        f"{found / max(exact, 1):.4f} of them"
    )
    print(f"cores {os.cpu_count()}, {cfg}")


def main() -> None:
    d = CurateConfig()
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["quality", "classes", "scale"])
    ap.add_argument("--corpus", default="photos,fashion28,fashion100,lfw25,lfw100")
    ap.add_argument("--rule", choices=["stars", "components"], default="stars")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--side", type=int, default=28)
    ap.add_argument("--threshold", type=int, default=d.threshold)
    ap.add_argument("--max-hash-bits", type=int, default=d.max_hash_bits)
    ap.add_argument("--confirm-threshold", type=float, default=d.confirm_threshold)
    ap.add_argument("--close-bits", type=int, default=d.close_bits)
    ap.add_argument("--close-confirm-threshold", type=float, default=d.close_confirm_threshold)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--baseline-n", type=int, default=100_000)
    args = ap.parse_args()
    cfg = CurateConfig(threshold=args.threshold, max_hash_bits=args.max_hash_bits,
                       confirm_threshold=args.confirm_threshold, close_bits=args.close_bits,
                       close_confirm_threshold=args.close_confirm_threshold)  # fmt: skip
    print(f"rule {args.rule}; {cfg}", flush=True)
    if args.what == "quality":
        for name in args.corpus.split(","):
            for seed in map(int, args.seeds.split(",")):
                r = quality(name, cfg, args.rule, seed=seed)
                print(f"  {name} seed {seed}: " + ", ".join(
                    f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()
                ), flush=True)  # fmt: skip
    elif args.what == "classes":
        r = classes(cfg, args.rule, side=args.side)
        print(f"  fashion{args.side} test set: " + ", ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()
        ))  # fmt: skip
    else:
        scale(args.n, args.baseline_n, cfg)


if __name__ == "__main__":
    main()
