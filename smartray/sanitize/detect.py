"""Face and licence-plate detection, and blurring what was found.

A detector is any class whose instances take a grayscale image and return boxes
`(x, y, w, h)` in its pixel coordinates. The built-in ones use the Haar cascades that
opencv-python-headless 4.x ships; others plug in as `module:Class` import paths.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np

from smartray.errors import ConfigError
from smartray.sanitize.cv import cv2
from smartray.types import Image

Box = tuple[int, int, int, int]


class Detector(Protocol):
    """Finds regions to blur in a grayscale image."""

    def __call__(self, gray: Image) -> list[Box]:
        """Returns boxes `(x, y, w, h)` in `gray`'s pixel coordinates."""
        ...


class HaarDetector:
    """A Haar cascade from OpenCV's bundled data.

    Args:
        cascade: File name under `cv2.data.haarcascades`.
        min_neighbors: Higher finds fewer, surer regions.
        min_size: Smallest box side in pixels of the reduced image.
    """

    def __init__(self, cascade: str, *, min_neighbors: int = 5, min_size: int = 20):
        path = os.path.join(cv2.data.haarcascades, cascade)  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ConfigError(
                f"cascade {path!r} did not load; opencv-python-headless 4.x ships it, 5.x does not"
            )
        self._min_neighbors = min_neighbors
        self._min_size = (min_size, min_size)

    def __call__(self, gray: Image) -> list[Box]:
        """Returns boxes `(x, y, w, h)` in `gray`'s pixel coordinates."""
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=self._min_neighbors, minSize=self._min_size
        )
        return [tuple(int(v) for v in box) for box in found]  # type: ignore[misc]


class FaceDetector(HaarDetector):
    """Frontal faces."""

    def __init__(self) -> None:
        super().__init__("haarcascade_frontalface_default.xml", min_neighbors=5, min_size=20)


class PlateDetector(HaarDetector):
    """Licence plates."""

    def __init__(self) -> None:
        super().__init__("haarcascade_russian_plate_number.xml", min_neighbors=6, min_size=16)


BUILTIN_DETECTORS: dict[str, type] = {"face": FaceDetector, "plate": PlateDetector}


@lru_cache(maxsize=8)
def load_detectors(names: Sequence[str]) -> tuple[Detector, ...]:
    """Instantiates detectors by name (`face`, `plate`) or `module:Class`; cached per process.

    Raises:
        ConfigError: an unknown name, listing the valid ones.
    """
    out: list[Detector] = []
    for name in names:
        if name in BUILTIN_DETECTORS:
            out.append(BUILTIN_DETECTORS[name]())
            continue
        module, _, attr = name.partition(":")
        if not attr:
            raise ConfigError(
                f"detector {name!r}: use one of {sorted(BUILTIN_DETECTORS)} or 'module:Class'"
            )
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"detector {name!r} cannot be imported: {e}") from e
        out.append(cls())
    return tuple(out)


def detect_regions(gray_small: Image, scale: float, detectors: Sequence[Detector]) -> list[Box]:
    """Runs detectors on a reduced grayscale image; boxes come back in full-size pixels.

    Args:
        gray_small: The reduced grayscale image.
        scale: Full-size pixels per reduced pixel.
        detectors: Detectors to run.
    """
    boxes: list[Box] = []
    for det in detectors:
        for x, y, w, h in det(gray_small):
            boxes.append(
                (int(x * scale), int(y * scale), int(np.ceil(w * scale)), int(np.ceil(h * scale)))
            )
    return boxes


def blur_regions(img: Image, boxes: Sequence[Box], *, pad: float = 0.15) -> Image:
    """Blurs each box (grown by `pad` on every side) beyond recognition, in place.

    A Gaussian as wide as the region, done cheaply: shrink the region to 12 x 12 cells,
    blur those, and stretch them back. What is left has no structure a face or plate
    detector finds again.
    """
    h, w = img.shape[:2]
    for x, y, bw, bh in boxes:
        px, py = int(bw * pad), int(bh * pad)
        x0, y0 = max(0, x - px), max(0, y - py)
        x1, y1 = min(w, x + bw + px), min(h, y + bh + py)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        roi = img[y0:y1, x0:x1]
        small = cv2.resize(roi, (12, 12), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=2.0)
        img[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return img
