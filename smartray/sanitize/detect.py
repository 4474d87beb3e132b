"""Face and licence-plate detection, and blurring what was found.

A detector is any class whose instances take a grayscale image and return boxes
`(x, y, w, h)` in its pixel coordinates. The built-in ones use the Haar cascades that
opencv-python-headless 4.x ships; others plug in as `module:Class` import paths.

The face detector confirms what it finds (figures in BENCHMARKS.md, `bench/blur.py`):
one Haar cascade alone fires on leaf veins, coins, paintings and calibration boards
(21 false regions per 100 face-free real photos), and a blurred patch destroys pixels
for good. So a candidate of the `alt2` cascade is kept only if an eye cascade finds an
eye in the upper part of the box and the `default` cascade agrees on the box's crop:
0.7 false regions per 100 face-free photos, recall 0.92 for faces of 40 px and more.
Debian's LBP face cascade is kept out on purpose: it is the independent check in tests.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np

from smartray.deadline import deadline
from smartray.errors import ConfigError
from smartray.sanitize.cv import cv2
from smartray.types import Image

Box = tuple[int, int, int, int]
NamedBox = tuple[str, Box]  # (detector name, box)


class Detector(Protocol):
    """Finds regions to blur in a grayscale image."""

    def __call__(self, gray: Image) -> list[Box]:
        """Returns boxes `(x, y, w, h)` in `gray`'s pixel coordinates."""
        ...


def _cascade(name: str) -> cv2.CascadeClassifier:
    path = os.path.join(cv2.data.haarcascades, name)  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise ConfigError(
            f"cascade {path!r} did not load; opencv-python-headless 4.x ships it, 5.x does not"
        )
    return cascade


def _boxes(found: Sequence[Sequence[int]]) -> list[Box]:
    return [(int(x), int(y), int(w), int(h)) for x, y, w, h in found]


class HaarDetector:
    """A Haar cascade from OpenCV's bundled data.

    Args:
        cascade: File name under `cv2.data.haarcascades`.
        scale_factor: Step between the scales searched; smaller finds more, costs more.
        min_neighbors: Higher finds fewer, surer regions.
        min_size: Smallest box side in pixels of the reduced image.
    """

    def __init__(
        self,
        cascade: str,
        *,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 20,
    ):
        self._cascade = _cascade(cascade)
        self._scale_factor = scale_factor
        self._min_neighbors = min_neighbors
        self._min_size = (min_size, min_size)

    def __call__(self, gray: Image) -> list[Box]:
        """Returns boxes `(x, y, w, h)` in `gray`'s pixel coordinates."""
        found = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self._scale_factor,
            minNeighbors=self._min_neighbors,
            minSize=self._min_size,
        )
        return _boxes(found)


class FaceDetector:
    """Frontal faces, each confirmed twice before it is blurred.

    1. Candidates: OpenCV's `frontalface_alt2` cascade on the reduced image.
    2. Eyes: the box is scaled to `EYE_SIDE` px; `haarcascade_eye` must find an eye in
       its upper 60 %.
    3. Agreement: the box with a margin, scaled so the face is `AGREE_SIDE` px, must hold
       a face for the `frontalface_default` cascade too, at about the same size.

    Checks 2 and 3 look at small fixed-size crops, so they cost little next to step 1.

    Args:
        confirm: Run checks 2 and 3 (False: the `alt2` cascade alone).
    """

    EYE_SIDE = 96
    AGREE_SIDE = 64

    def __init__(self, *, confirm: bool = True) -> None:
        self._find = HaarDetector("haarcascade_frontalface_alt2.xml", min_neighbors=5)
        self._confirm = confirm
        if confirm:
            self._eyes = _cascade("haarcascade_eye.xml")
            self._agree = _cascade("haarcascade_frontalface_default.xml")

    def __call__(self, gray: Image) -> list[Box]:
        """Returns the confirmed face boxes `(x, y, w, h)` in `gray`'s pixel coordinates."""
        found = self._find(gray)
        if not self._confirm:
            return found
        return [b for b in found if self._has_eye(gray, b) and self._agrees(gray, b)]

    def _has_eye(self, gray: Image, box: Box) -> bool:
        x, y, w, h = box
        side = self.EYE_SIDE
        face = cv2.resize(gray[y : y + h, x : x + w], (side, side))
        eyes = self._eyes.detectMultiScale(
            face[: int(side * 0.6)],
            scaleFactor=1.05,
            minNeighbors=3,
            minSize=(side // 8, side // 8),
            maxSize=(side // 2, side // 2),
        )
        return len(eyes) > 0

    def _agrees(self, gray: Image, box: Box) -> bool:
        x, y, w, h = box
        pad = int(w * 0.3)
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(gray.shape[1], x + w + pad), min(gray.shape[0], y + h + pad)
        k = self.AGREE_SIDE / w
        size = (max(1, round((x1 - x0) * k)), max(1, round((y1 - y0) * k)))
        interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
        crop = cv2.resize(gray[y0:y1, x0:x1], size, interpolation=interp)
        lo, hi = int(self.AGREE_SIDE * 0.6), int(self.AGREE_SIDE * 1.6)
        faces = self._agree.detectMultiScale(
            crop, scaleFactor=1.05, minNeighbors=3, minSize=(lo, lo), maxSize=(hi, hi)
        )
        return len(faces) > 0


class SingleCascadeFaceDetector(HaarDetector):
    """The face detector of smartray's first releases: `frontalface_default` alone.

    Kept for comparisons (`bench/blur.py`); it blurs textures that look like faces.
    """

    def __init__(self) -> None:
        super().__init__("haarcascade_frontalface_default.xml", min_neighbors=5, min_size=20)


class PlateDetector(HaarDetector):
    """Licence plates (opt-in: `--detectors face,plate`).

    OpenCV's only plate cascade was trained on Russian plates. On the real test images it
    found none of the plates and fired on textures (BENCHMARKS.md), so it is not on by
    default.
    """

    def __init__(self) -> None:
        super().__init__("haarcascade_russian_plate_number.xml", min_neighbors=6, min_size=16)


BUILTIN_DETECTORS: dict[str, type] = {"face": FaceDetector, "plate": PlateDetector}


@lru_cache(maxsize=8)
def load_detectors(names: Sequence[str], timeout_s: float | None = None) -> tuple[Detector, ...]:
    """Instantiates detectors by name (`face`, `plate`) or `module:Class`; cached per process.

    Args:
        names: Detector names.
        timeout_s: Seconds a plug-in's constructor may take (None: no deadline).

    Raises:
        ConfigError: an unknown name, listing the valid ones.
        StepTimeoutError: a plug-in's constructor did not return within `timeout_s`.
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
        with deadline(timeout_s, f"detector {name!r} (loading)"):
            out.append(cls())
    return tuple(out)


def detect_regions(
    gray_small: Image,
    scale: float,
    detectors: Sequence[Detector],
    names: Sequence[str] = (),
    *,
    timeout_s: float | None = None,
) -> list[NamedBox]:
    """Runs detectors on a reduced grayscale image; boxes come back in full-size pixels.

    Args:
        gray_small: The reduced grayscale image.
        scale: Full-size pixels per reduced pixel.
        detectors: Detectors to run.
        names: Each detector's name, recorded with its boxes (default: its class name).
        timeout_s: Seconds each detector may take on the image (None: no deadline).

    Raises:
        StepTimeoutError: a detector did not answer within `timeout_s`.
    """
    boxes: list[NamedBox] = []
    for i, det in enumerate(detectors):
        name = names[i] if i < len(names) else type(det).__name__
        with deadline(timeout_s, f"detector {name!r}"):
            found = det(gray_small)
        for x, y, w, h in found:
            full = (
                int(x * scale),
                int(y * scale),
                int(np.ceil(w * scale)),
                int(np.ceil(h * scale)),
            )
            boxes.append((name, full))
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
