"""A compact pixel descriptor of each asset: its 32x32 grayscale image, 1,024 bytes.

Computed at ingest from the upright pixels before any blurring (like the hashes) and
stored in `assets.descriptor`, so that near-duplicate candidates can be confirmed on
pixels (`curate/confirm.py`) without reading image bytes. For assets ingested before
the column existed, `from_thumbnail` makes it from the stored thumbnail.
"""

from __future__ import annotations

import numpy as np

from smartray.sanitize.cv import cv2
from smartray.types import Image

DESCRIPTOR_SIDE = 32
DESCRIPTOR_BYTES = DESCRIPTOR_SIDE * DESCRIPTOR_SIDE


def descriptor(gray: Image) -> bytes:
    """The descriptor of a grayscale image (any size): 32x32 uint8, area-averaged."""
    side = (DESCRIPTOR_SIDE, DESCRIPTOR_SIDE)
    interp = cv2.INTER_AREA if min(gray.shape[:2]) >= DESCRIPTOR_SIDE else cv2.INTER_LINEAR
    small = cv2.resize(gray, side, interpolation=interp)
    return bytes(np.ascontiguousarray(small, dtype=np.uint8).tobytes())


def from_thumbnail(jpeg: bytes) -> bytes | None:
    """The descriptor made from a stored thumbnail (None if it does not decode)."""
    gray = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    return None if gray is None else descriptor(gray)
