"""Planted near-copies with known truth, for the near-duplicate tests and benchmarks.

What users' corpora hold twice: a re-encoded JPEG, a brightness/contrast change, a small
crop scaled back to the original size, a small rotation. The strengths are those of
`bench/dedup.py` (BENCHMARKS.md): JPEG quality 70-95, gain 0.85-1.15 with offset +-15
grey levels, a crop of up to 4 % of the side, a rotation of up to 2 degrees.
"""

from __future__ import annotations

import numpy as np

from smartray.sanitize.cv import cv2
from smartray.types import Image

KINDS = ("jpeg", "brightness", "crop", "rotate")


def near_copy(img: Image, kind: str, rng: np.random.Generator) -> Image:
    """One near-copy of an 8-bit image (gray or BGR) of the given kind (`KINDS`)."""
    h, w = img.shape[:2]
    if kind == "jpeg":
        quality = int(rng.integers(70, 96))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return np.asarray(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))
    if kind == "brightness":
        gain, offset = rng.uniform(0.85, 1.15), rng.uniform(-15, 15)
        changed: Image = np.clip(img.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
        return changed
    if kind == "crop":
        my, mx = max(1, round(0.04 * h)), max(1, round(0.04 * w))
        dy, dx = int(rng.integers(0, my + 1)), int(rng.integers(0, mx + 1))
        part = img[dy : h - my + dy, dx : w - mx + dx]
        return np.asarray(cv2.resize(part, (w, h), interpolation=cv2.INTER_AREA))
    if kind == "rotate":
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-2, 2)), 1.0)
        return np.asarray(cv2.warpAffine(img, turn, (w, h), borderMode=cv2.BORDER_REPLICATE))
    raise ValueError(f"kind {kind!r}: choose one of {', '.join(KINDS)}")


def near_copies(img: Image, rng: np.random.Generator) -> list[Image]:
    """One near-copy of each kind, in `KINDS` order."""
    return [near_copy(img, kind, rng) for kind in KINDS]
