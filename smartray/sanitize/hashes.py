"""64-bit perceptual hashes of grayscale images (numpy and OpenCV only: cheap to load)."""

from __future__ import annotations

import numpy as np

from smartray.sanitize.cv import cv2
from smartray.types import Image

__all__ = ["dhash", "hamming", "phash"]


def phash(gray: Image) -> int:
    """64-bit DCT perceptual hash (as imagehash computes it), as a signed int64."""
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8]
    bits = (low > np.median(low)).flatten()
    return _pack(bits)


def dhash(gray: Image) -> int:
    """64-bit difference hash, as a signed int64."""
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    return _pack((small[:, 1:] > small[:, :-1]).flatten())


def _pack(bits: np.ndarray) -> int:
    return int(np.packbits(bits.astype(np.uint8)).view(">i8")[0])


def hamming(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes."""
    return int(bin((a ^ b) & 0xFFFFFFFFFFFFFFFF).count("1"))
