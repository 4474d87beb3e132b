"""Sanitize: decode under limits, orient, measure, blur faces and plates, re-encode."""

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
