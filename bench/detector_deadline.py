"""Sanitize with face detection: what the per-call detector deadline costs.

    .venv/bin/python bench/detector_deadline.py [--rounds 5]

Ingest runs every detector call under `smartray.deadline.deadline` (`--detector-timeout-s`,
60 s by default: a SIGALRM timer armed and disarmed around each call, so a plug-in that
stalls fails the job instead of hanging it). This times `smartray.sanitize.ops.
sanitize_pixels` (detection, blur, re-encoding, thumbnail: the per-image work of ingest with
blurring on, face detector) in one process, on two real corpora:

- photos: scikit-image's colour and grey photos at their own sizes (astronaut, coffee,
  chelsea, rocket, camera, coins, ...), 10 passes;
- fashion28: 2,000 of Fashion-MNIST's test images (Debian's `dataset-fashion-mnist`),
  28 px: the smallest images, where a fixed cost per call weighs most.

smartray: as shipped (deadline armed for each detector call); baseline: the same call with
`detect_regions`'s deadline off (`timeout_s=None`, as before the deadline existed).
Interleaved rounds (the baseline first in odd rounds, smartray first in even ones); prints
each round and the median ratio (baseline time / smartray time) with its range per corpus.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np


def photos() -> list[np.ndarray]:
    from skimage import data

    from smartray.sanitize.cv import cv2

    names = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "brick",
             "immunohistochemistry", "moon", "page", "text", "horse")  # fmt: skip
    out = []
    for name in names:
        img = np.asarray(getattr(data, name)())
        if img.dtype == bool:
            img = img.astype(np.uint8) * 255
        if img.ndim == 3:
            img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR)
        out.append(np.ascontiguousarray(img))
    return out * 10


def fashion(n: int) -> list[np.ndarray]:
    from smartray.testing import fashion_mnist

    images, _ = fashion_mnist.load("test")
    return [np.ascontiguousarray(i) for i in images[:n]]


def run(images: list[np.ndarray], deadline_on: bool) -> float:
    from smartray.sanitize import ops
    from smartray.sanitize.config import SanitizeConfig

    config = SanitizeConfig()
    real = ops.detect_regions

    def without(*args: Any, **kwargs: Any) -> Any:
        kwargs["timeout_s"] = None
        return real(*args, **kwargs)

    if not deadline_on:
        ops.detect_regions = without  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        for img in images:
            ops.sanitize_pixels(img, config=config, lossless=False)
        return time.perf_counter() - t0
    finally:
        ops.detect_regions = real  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fashion", type=int, default=2000)
    args = ap.parse_args(argv)
    from smartray.sanitize.cv import pin_threads

    pin_threads()
    corpora = {"photos": photos(), "fashion28": fashion(args.fashion)}
    for name, images in corpora.items():
        run(images[:20], True)  # warm: cascade loaded, caches filled
        ratios = []
        for i in range(args.rounds):
            if i % 2 == 0:  # each side goes first in every other round
                base, ours = run(images, False), run(images, True)
            else:
                ours, base = run(images, True), run(images, False)
            ratios.append(base / ours)
            per = 1e3 / len(images)
            print(
                f"{name} round {i + 1}: {len(images)} images; without deadline "
                f"{base * per:.3f} ms/img, with {ours * per:.3f} ms/img; ratio {base / ours:.3f}",
                flush=True,
            )
        lo, hi = min(ratios), max(ratios)
        print(f"== {name}: median ratio {np.median(ratios):.3f} ({lo:.3f}-{hi:.3f})")


if __name__ == "__main__":
    sys.exit(main())
