"""A small folder-organized data set with planted near-duplicates, for managing the lake.

Real photos from scikit-image (no download), cropped to distinct 96x128 pictures, in two
class folders; some have near-duplicate variants (JPEG quality 50, half size) beside
them, and one short video of three scenes. `PLANTED` says which file is a variant of
which, so tests know the groups to expect.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smartray.sanitize.cv import cv2
from smartray.testing.videos import scene_frames, write_video

# (photo, top, left) of each original: pictures far apart in content
ORIGINALS = (("astronaut", 0, 0), ("coffee", 100, 200), ("chelsea", 60, 150),
             ("rocket", 200, 300), ("camera", 150, 150), ("coins", 50, 50),
             ("brick", 0, 0), ("immunohistochemistry", 200, 200), ("moon", 300, 300),
             ("hubble_deep_field", 400, 400), ("gravel", 100, 100),
             ("grass", 300, 100))  # fmt: skip
VARIANTS = 6  # the first six originals get two variants each


def _crop(name: str, top: int, left: int) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    img = img[top : top + 96, left : left + 128]
    if img.ndim == 2:
        return np.ascontiguousarray(img)
    return np.ascontiguousarray(cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR))


def write_corpus(root: str | Path, *, video: bool = True) -> dict[str, str]:
    """Writes the corpus under `root`; returns {relative path: original's relative path}.

    Originals alternate between `cats/` and `dogs/`; a variant sits beside its original.
    """
    root = Path(root)
    planted: dict[str, str] = {}
    for i, (name, top, left) in enumerate(ORIGINALS):
        folder = root / ("cats" if i % 2 == 0 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        img = _crop(name, top, left)
        rel = f"{folder.name}/{name}.jpg"
        cv2.imwrite(str(root / rel), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        planted[rel] = rel
        if i < VARIANTS:
            low = f"{folder.name}/{name}-q50.jpg"
            cv2.imwrite(str(root / low), img, [cv2.IMWRITE_JPEG_QUALITY, 50])
            half = f"{folder.name}/{name}-half.png"
            cv2.imwrite(str(root / half), cv2.resize(img, (64, 48), interpolation=cv2.INTER_AREA))
            planted[low] = planted[half] = rel
    if video:
        (root / "clips").mkdir(exist_ok=True)
        write_video(root / "clips" / "scenes.mp4", scene_frames(6, 10, 2.0), fps=10, gop=10)
    return planted
