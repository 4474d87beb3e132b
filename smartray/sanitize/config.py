"""Settings of the sanitize stage."""

from pydantic import BaseModel, ConfigDict, Field

from smartray.sanitize.cv import DEFAULT_MAX_PIXELS

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class SanitizeConfig(BaseModel):
    """How inputs are checked, cleaned and summarized.

    Attributes:
        max_bytes: Inputs larger than this are refused unread (`too_large`).
        max_pixels: Images whose header declares more pixels are refused undecoded
            (`too_many_pixels`).
        blur: Detect and blur faces (and licence plates, if asked for).
        detectors: Detector names (`face`, `plate`) or `module:Class` import paths. The
            plate detector is opt-in: on real photos it found no plate and blurred
            textures (BENCHMARKS.md).
        detector_timeout_s: Seconds a detector may take to load, or on one image; a
            detector that takes longer stops the run (exit 1), naming it and the input.
        detect_max_side: Longest side of the reduced image detection runs on.
        jpeg_quality: Quality of re-encoded JPEGs.
        thumbnail_side: Longest side of the thumbnail.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(DEFAULT_MAX_BYTES, gt=0)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, gt=0)
    blur: bool = True
    detectors: tuple[str, ...] = ("face",)
    detector_timeout_s: float = Field(60.0, gt=0)
    detect_max_side: int = Field(640, ge=64)
    jpeg_quality: int = Field(90, ge=1, le=100)
    thumbnail_side: int = Field(128, ge=16, le=1024)
