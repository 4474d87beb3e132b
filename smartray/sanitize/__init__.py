"""Sanitize: decode under limits, orient, measure, blur faces and plates, re-encode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smartray.sanitize.config import SanitizeConfig
    from smartray.sanitize.detect import Detector, FaceDetector, PlateDetector
    from smartray.sanitize.ops import sanitize_image, sha256_hex

__all__ = [
    "Detector",
    "FaceDetector",
    "PlateDetector",
    "SanitizeConfig",
    "sanitize_image",
    "sha256_hex",
]

_HOMES = {
    "SanitizeConfig": "smartray.sanitize.config",
    "Detector": "smartray.sanitize.detect",
    "FaceDetector": "smartray.sanitize.detect",
    "PlateDetector": "smartray.sanitize.detect",
    "sanitize_image": "smartray.sanitize.ops",
    "sha256_hex": "smartray.sanitize.ops",
}


def __getattr__(name: str) -> Any:
    # Loaded when first asked for, so a process that needs only `cv` or the hashes (the
    # video decoder's child) does not load the detectors and Pillow.
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'smartray.sanitize' has no attribute {name!r}")
