"""Face blur quality and cost on real photos: false regions, recall, time per image.

    .venv/bin/python bench/blur.py [--repeat 5] [--settings old,new,...] [--json OUT]

Needs Debian's `mate-backgrounds` and `opencv-doc` unpacked under .cache/ (`make test`
fetches both) and scikit-image's bundled photos. Every image is reduced to 640 px on its
longest side first, as ingest does (`detect_max_side`), and detection runs on that
grayscale image, one OpenCV thread.

(a) Face-free real images: 30 mate-backgrounds wallpapers, the opencv-doc samples without
    a person's face (86 of 91: not messi5, basketball1/2, left06/right06 with a profile,
    nor sudoku.png, whose newspaper prints a small face photo) and 20 scikit-image photos
    without a person (not `camera`, not `astronaut`): false regions per 100 images.
(b) Faces: the real faces of `astronaut`, `messi5.jpg`, `basketball1.png` and
    `basketball2.png` (boxes drawn by hand), and scikit-image's 100 `lfw_subset` faces
    pasted into face-free backgrounds at 40, 56, 80, 112 and 160 px (feathered edges,
    seeded places). A face is found when a box covers half of it and is at most 6x its
    area. Recall per size, and false regions in those images.
(c) Time: CPU ms per image of the detector alone, over the face-free set, settings
    interleaved (old, new, old, new ...) `--repeat` times: median and range.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from smartray.sanitize.cv import cv2
from smartray.sanitize.detect import (
    Box,
    FaceDetector,
    HaarDetector,
    PlateDetector,
    SingleCascadeFaceDetector,
)
from smartray.sanitize.ops import decode, orient, shrink, to_gray
from smartray.sanitize.probe import probe

ROOT = Path(__file__).resolve().parents[1]
OPENCV_DOC = ROOT / ".cache/opencv-doc/usr/share/doc/opencv-doc/examples/data"
MATE = ROOT / ".cache/mate-backgrounds/usr/share/backgrounds/mate"
WITH_FACES = {"messi5.jpg", "basketball1.png", "basketball2.png", "left06.jpg", "right06.jpg"}
PRINTED_FACE = {"sudoku.png"}  # a 30 px newspaper photo of a face: neither set
SK_FREE = [
    "brick",
    "cat",
    "checkerboard",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
    "cell",
]
REAL_FACES = {
    "astronaut": (177, 66, 96, 96),
    "messi5.jpg": (227, 94, 37, 37),
    "basketball1.png": (72, 91, 39, 39),
    "basketball2.png": (72, 91, 38, 38),
}
SIZES = (40, 56, 80, 112, 160)
SIDE = 640

Detect = Callable[[np.ndarray], list[Box]]


class EyesOnly(FaceDetector):
    """`alt2` candidates with the eye check only (no second-cascade agreement)."""

    def __call__(self, gray: np.ndarray) -> list[Box]:
        return [b for b in self._find(gray) if self._has_eye(gray, b)]


class AgreeOnly(FaceDetector):
    """`alt2` candidates with the `default` cascade's agreement only (no eye check)."""

    def __call__(self, gray: np.ndarray) -> list[Box]:
        return [b for b in self._find(gray) if self._agrees(gray, b)]


SETTINGS: dict[str, Callable[[], Detect]] = {
    "old: default cascade, minNeighbors 5 (smartray <= this change)": SingleCascadeFaceDetector,
    "new: alt2 + eye + default agrees (FaceDetector)": FaceDetector,
    "default cascade, minNeighbors 8": lambda: HaarDetector(
        "haarcascade_frontalface_default.xml", min_neighbors=8
    ),
    "default cascade, minNeighbors 12": lambda: HaarDetector(
        "haarcascade_frontalface_default.xml", min_neighbors=12
    ),
    "alt cascade, minNeighbors 5": lambda: HaarDetector("haarcascade_frontalface_alt.xml"),
    "alt2 cascade, minNeighbors 5": lambda: FaceDetector(confirm=False),
    "alt_tree cascade, minNeighbors 3": lambda: HaarDetector(
        "haarcascade_frontalface_alt_tree.xml", min_neighbors=3
    ),
    "alt2 + eye check": EyesOnly,
    "alt2 + default agrees": AgreeOnly,
    "plate cascade (opt-in), minNeighbors 6": PlateDetector,
}


def _load(path: Path) -> np.ndarray:
    data = path.read_bytes()
    info = probe(data, max_pixels=10**9, name=path.name)
    return orient(decode(data, info), info.orientation)


def _reduced(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(shrink(to_gray(img), SIDE)[0])


def _sk(name: str) -> np.ndarray:
    import skimage.data

    im = np.asarray(getattr(skimage.data, name)())
    if im.dtype == bool:
        im = im.astype(np.uint8) * 255
    elif im.dtype.kind == "f":
        im = (np.clip(im, 0, 1) * 255).astype(np.uint8)
    if im.ndim == 3:
        im = cv2.cvtColor(np.ascontiguousarray(im[:, :, :3]), cv2.COLOR_RGB2BGR)
    return im.astype(np.uint8)


def face_free() -> dict[str, np.ndarray]:
    """The face-free real images, reduced to 640 px grayscale."""
    for folder in (OPENCV_DOC, MATE):
        if not folder.is_dir():
            sys.exit(f"{folder} is missing: run `make test` (it unpacks the Debian packages)")
    out = {f"mate/{p.parent.name}/{p.name}": _reduced(_load(p)) for p in sorted(MATE.glob("*/*"))}
    for p in sorted([*OPENCV_DOC.glob("*.jpg"), *OPENCV_DOC.glob("*.png")]):
        if p.name not in WITH_FACES | PRINTED_FACE:
            out[f"opencv-doc/{p.name}"] = _reduced(_load(p))
    for name in SK_FREE:
        out[f"skimage/{name}"] = _reduced(_sk(name))
    import skimage.data

    out["skimage/motorcycle"] = _reduced(
        cv2.cvtColor(skimage.data.stereo_motorcycle()[0], cv2.COLOR_RGB2BGR)
    )
    return out


def faces(backgrounds: dict[str, np.ndarray]) -> list[tuple[str, int, np.ndarray, Box]]:
    """(name, face size, image, face box): real faces, then pasted `lfw_subset` faces."""
    import skimage.data

    real = {"astronaut": _reduced(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))}
    for name in ("messi5.jpg", "basketball1.png", "basketball2.png"):
        real[name] = _reduced(_load(OPENCV_DOC / name))
    out = [(name, REAL_FACES[name][2], g, REAL_FACES[name]) for name, g in real.items()]
    bgs = [g for k, g in backgrounds.items() if k.startswith(("mate/", "skimage/"))]
    rng = np.random.default_rng(0)
    for i, face in enumerate(skimage.data.lfw_subset()[:100]):
        for s in SIZES:
            bg = bgs[(i * len(SIZES) + s) % len(bgs)].copy()
            h, w = bg.shape
            if min(h, w) < s + 10:
                continue
            x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
            pixels = cv2.resize(
                (face * 255).astype(np.uint8), (s, s), interpolation=cv2.INTER_CUBIC
            )
            ramp = np.clip(np.minimum(np.arange(s), np.arange(s)[::-1]) / max(2, s // 10), 0, 1)
            mask = np.minimum.outer(ramp, ramp)
            roi = bg[y : y + s, x : x + s].astype(np.float32)
            bg[y : y + s, x : x + s] = (roi * (1 - mask) + pixels * mask).astype(np.uint8)
            out.append((f"lfw{i}", s, bg, (x, y, s, s)))
    return out


def covers(found: Box, truth: Box) -> bool:
    """Whether a blurred box hides a face: half of it covered, at most 6x its area."""
    x, y, w, h = found
    tx, ty, tw, th = truth
    ix = max(0, min(x + w, tx + tw) - max(x, tx))
    iy = max(0, min(y + h, ty + th) - max(y, ty))
    return ix * iy >= 0.5 * tw * th and w * h <= 6 * tw * th


def quality(detect: Detect, free: dict[str, np.ndarray], with_faces: list) -> dict:
    """False regions on face-free images; recall and false regions on images with faces."""
    hits_free = {k: len(b) for k, g in free.items() if (b := detect(g))}
    found = dict.fromkeys(SIZES, 0)
    total = dict.fromkeys(SIZES, 0)
    false_in_faces = 0
    real = {}
    for name, size, g, truth in with_faces:
        boxes = detect(g)
        hit = any(covers(b, truth) for b in boxes)
        false_in_faces += sum(not covers(b, truth) and not covers(truth, b) for b in boxes)
        if name in REAL_FACES:
            real[name] = hit
            continue
        total[size] += 1
        found[size] += hit
    n = sum(total.values())
    return {
        "false_regions": sum(hits_free.values()),
        "false_per_100": 100 * sum(hits_free.values()) / len(free),
        "false_images": sorted(hits_free),
        "recall_ge40": sum(found.values()) / n,
        "recall_by_size": {s: found[s] / total[s] for s in SIZES},
        "false_in_face_images": false_in_faces,
        "real_faces_found": real,
    }


def timing(settings: dict[str, Detect], images: list[np.ndarray], repeat: int) -> dict:
    """CPU ms per image of each detector, interleaved `repeat` times: median, min, max."""
    runs: dict[str, list[float]] = {k: [] for k in settings}
    for _ in range(repeat):
        for name, detect in settings.items():
            t = time.process_time()
            for g in images:
                detect(g)
            runs[name].append(1000 * (time.process_time() - t) / len(images))
    return {
        k: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
        for k, v in runs.items()
    }


def main() -> None:
    """Prints one line per setting, then the interleaved timing of old and new."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--quality", default="all", help="'all', 'none' or comma-separated keys")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    free = face_free()
    with_faces = faces(free)
    print(f"{len(free)} face-free images; {len(with_faces)} with a face ({len(REAL_FACES)} real)")
    report: dict = {"images": {"face_free": len(free), "with_faces": len(with_faces)}}
    keys = list(SETTINGS) if args.quality == "all" else []
    if args.quality not in ("all", "none"):
        keys = [k for k in SETTINGS if any(k.startswith(w) for w in args.quality.split(","))]
    for key in keys:
        q = quality(SETTINGS[key](), free, with_faces)
        report[key] = q
        sizes = " ".join(f"{s}:{r:.2f}" for s, r in q["recall_by_size"].items())
        print(
            f"{key:64s} false/100 {q['false_per_100']:5.1f} ({q['false_regions']} in "
            f"{len(q['false_images'])} images)  recall>=40 {q['recall_ge40']:.3f} [{sizes}]  "
            f"false in face images {q['false_in_face_images']}  real faces "
            f"{sum(q['real_faces_found'].values())}/{len(REAL_FACES)}",
            flush=True,
        )
        if q["false_regions"] and q["false_regions"] <= 8:
            print(f"    false regions in: {', '.join(q['false_images'])}")
    old, new = list(SETTINGS)[:2]
    t = timing({old: SETTINGS[old](), new: SETTINGS[new]()}, list(free.values()), args.repeat)
    report["timing_ms_per_image"] = t
    for k, v in t.items():
        print(f"time {k:58s} median {v['median']:6.1f} ms (min {v['min']:.1f}, max {v['max']:.1f})")
    print(f"new / old: {t[new]['median'] / t[old]['median']:.2f}x (medians)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
