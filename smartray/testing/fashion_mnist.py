"""Fashion-MNIST, a real classification corpus of small low-texture images, as files.

Debian's `dataset-fashion-mnist` ships it (70,000 28x28 gray product photos in 10
classes, 31 MB); `make test` unpacks the package under `.cache/` when it is not
installed. `write_pngs` lays images out as PNGs in class folders, the layout the
`folders` label format imports, at the size users store them (28 px, or upscaled).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from smartray.sanitize.cv import cv2

CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle-boot")  # fmt: skip
_INSTALLED = Path("/usr/share/datasets/fashion-mnist")
_UNPACKED = Path(".cache/fashion-mnist/usr/share/datasets/fashion-mnist")


def data_dir() -> Path | None:
    """Where the data set is, or None.

    Looked for in env `SMARTRAY_FASHION_MNIST`, the Debian package, then the copy that
    `make test` unpacks under `.cache/` of the checkout.
    """
    here = Path(__file__).resolve().parents[2]
    for path in (os.environ.get("SMARTRAY_FASHION_MNIST"), _INSTALLED, here / _UNPACKED):
        if path and (Path(path) / "t10k-images-idx3-ubyte.gz").is_file():
            return Path(path)
    return None


def load(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Images ([n, 28, 28] uint8) and labels ([n] uint8) of `test` (10k) or `train` (60k).

    Raises:
        FileNotFoundError: the data set is not there (install `dataset-fashion-mnist`).
    """
    where = data_dir()
    if where is None:
        raise FileNotFoundError(
            "Fashion-MNIST not found: `apt-get install dataset-fashion-mnist`, or run "
            "`make test` (it unpacks the Debian package under .cache/)"
        )
    prefix = {"test": "t10k", "train": "train"}[split]
    with gzip.open(where / f"{prefix}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(where / f"{prefix}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def resize(img: np.ndarray, side: int) -> np.ndarray:
    """An image at `side` px (cubic upscaling, as photo tools do), unchanged at 28."""
    if img.shape[0] == side:
        return img
    return np.asarray(cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC))


def write_pngs(
    folder: Path, images: np.ndarray, labels: np.ndarray, *, side: int = 28, prefix: str = ""
) -> list[Path]:
    """Writes each image as `folder/<class>/<prefix><index>.png`; returns the paths."""
    paths = []
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        target = folder / CLASSES[int(label)] / f"{prefix}{i:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), resize(img, side))
        paths.append(target)
    return paths
