"""scikit-learn's handwritten digits (1,797 real 8x8 scans, bundled) as class folders.

The layout the `folders` label format imports (`zero/`, `one/`, ... as in
`schemas/ontologies/digits.yaml`), each digit upscaled to `side` px as a PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smartray.sanitize.cv import cv2

COUNT = 1797  # images in scikit-learn's digits
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def write_pngs(folder: str | Path, n: int | None = None, *, side: int = 32) -> list[Path]:
    """Writes the first `n` digits (all if None) as `folder/<name>/digit-<index>.png`."""
    from sklearn.datasets import load_digits

    data = load_digits()
    out = []
    count = len(data.images) if n is None else min(n, len(data.images))
    for i in range(count):
        px = (data.images[i] * (255.0 / 16.0)).astype(np.uint8)
        img = cv2.resize(px, (side, side), interpolation=cv2.INTER_NEAREST)
        target = Path(folder) / NAMES[int(data.target[i])] / f"digit-{i:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), img)
        out.append(target)
    return out


def plant_flips(paths: list[Path], count: int, *, seed: int = 0) -> dict[str, str]:
    """Moves `count` of the digit files `paths` into a wrong class folder: label errors.

    The files and their wrong folder are drawn from `seed`. Returns the asset id (sha256
    of the bytes, as ingest names it) of each moved file -> its true class.
    """
    import hashlib
    import random

    rng = random.Random(seed)
    planted = {}
    for path in rng.sample(sorted(paths), count):
        k = NAMES.index(path.parent.name)
        wrong = path.parent.parent / NAMES[(k + 1 + rng.randrange(len(NAMES) - 1)) % len(NAMES)]
        wrong.mkdir(exist_ok=True)
        moved = path.rename(wrong / path.name)
        planted[hashlib.sha256(moved.read_bytes()).hexdigest()] = NAMES[k]
    return planted
