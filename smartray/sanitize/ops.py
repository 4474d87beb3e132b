"""Pure, Ray-free operators that turn one image's bytes into a clean asset row.

Order matters: orientation first, metrics and hashes on the oriented pixels, then the
blur, then re-encoding (which drops EXIF, GPS, XMP and text chunks) and the thumbnail.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from typing import Any

import numpy as np
from PIL import Image as PILImage

from smartray.sanitize.config import SanitizeConfig
from smartray.sanitize.cv import cv2
from smartray.sanitize.descriptor import descriptor
from smartray.sanitize.detect import NamedBox, blur_regions, detect_regions, load_detectors
from smartray.sanitize.hashes import dhash, phash
from smartray.sanitize.probe import LOSSLESS_FORMATS, Probe, probe
from smartray.types import Image, Reason, RejectedInput


def sha256_hex(data: bytes) -> str:
    """The asset id: lowercase hex sha256 of the source bytes."""
    return hashlib.sha256(data).hexdigest()


def decode(data: bytes, info: Probe) -> Image:
    """Decodes the first frame to 8-bit gray, BGR or BGRA, EXIF orientation not yet applied.

    Raises:
        RejectedInput: `corrupt` if neither OpenCV nor Pillow can decode the pixels.
    """
    buf = np.frombuffer(data, np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if info.mode in ("P", "PA") and info.format == "png":
        img = None  # palette PNGs with transparency: Pillow keeps the alpha OpenCV drops
    if img is None:
        img = _decode_with_pillow(data, info)
    img = to_8bit(img)
    if img.ndim == 3 and img.shape[2] == 4 and int(img[:, :, 3].min()) == 255:
        img = np.ascontiguousarray(img[:, :, :3])  # an alpha channel that hides nothing
    return img


def _decode_with_pillow(data: bytes, info: Probe) -> Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = PILImage.open(io.BytesIO(data))
            src.seek(0)
            has_alpha = src.mode in ("RGBA", "LA", "PA") or "transparency" in src.info
            im = src.convert("RGBA" if has_alpha else ("L" if src.mode in ("1", "L") else "RGB"))
            arr = np.asarray(im)
    except Exception as e:
        raise RejectedInput(Reason.CORRUPT, f"{info.format} pixels do not decode: {e}") from None
    if arr.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if arr.shape[2] == 4 else cv2.COLOR_RGB2BGR
        arr = cv2.cvtColor(arr, code)
    return arr


def to_8bit(img: np.ndarray) -> Image:
    """Scales 16-bit and float images to 8 bits; drops a redundant gray channel axis."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype.kind == "f":
        img = (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise RejectedInput(Reason.UNSUPPORTED_FORMAT, f"pixel type {img.dtype} is not supported")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 2:  # gray + alpha
        img = cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(img)


def orient(img: Image, orientation: int) -> Image:
    """Applies EXIF orientation 1..8 so the pixels are upright."""
    if orientation == 2:
        return cv2.flip(img, 1)
    if orientation == 3:
        return cv2.rotate(img, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(img, 0)
    if orientation == 5:
        return cv2.transpose(img)
    if orientation == 6:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(img), -1)
    if orientation == 8:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def to_gray(img: Image) -> Image:
    """A grayscale view of a gray, BGR or BGRA image."""
    if img.ndim == 2:
        return img
    return cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


def shrink(img: Image, max_side: int) -> tuple[Image, float]:
    """Downscales so the longest side is at most `max_side`; returns it and the scale."""
    h, w = img.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return img, 1.0
    scale = longest / max_side
    size = (max(1, round(w / scale)), max(1, round(h / scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA), scale


def quality_metrics(img: Image, gray: Image, gray_small: Image, small: Image) -> dict[str, Any]:
    """Intrinsic metrics of the oriented image, before any blurring.

    Args:
        img: The oriented 8-bit image.
        gray: Its grayscale version, full size.
        gray_small: A reduced grayscale version, for the hashes.
        small: The reduced colour version, for the grayscale test.
    """
    h, w = gray.shape[:2]
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    _, lap_std = cv2.meanStdDev(lap)
    mean, std = cv2.meanStdDev(gray)
    return {
        "width": w,
        "height": h,
        "channels": 1 if img.ndim == 2 else img.shape[2],
        "aspect": w / h,
        "blur": float(lap_std[0, 0] ** 2),
        "brightness": float(mean[0, 0] / 255.0),
        "contrast": float(std[0, 0] / 255.0),
        "is_grayscale": is_grayscale(small),
        "phash": phash(gray_small),
        "dhash": dhash(gray_small),
        "descriptor": descriptor(gray_small),
    }


def is_grayscale(img: Image, *, tolerance: int = 8) -> bool:
    """True for a one-channel image or a colour one whose channels (almost) agree.

    Looks at a grid of at most ~128 x 128 pixels (the caller passes a reduced image).
    """
    if img.ndim == 2:
        return True
    step = max(1, max(img.shape[:2]) // 128)
    grid = img[::step, ::step]
    b, g, r = (grid[:, :, i].astype(np.int16) for i in range(3))
    return bool(max(np.abs(b - g).max(), np.abs(g - r).max()) <= tolerance)


def encode(img: Image, *, lossless: bool, jpeg_quality: int) -> tuple[bytes, str]:
    """Re-encodes from pixels: PNG for lossless sources or alpha, else JPEG.

    The encoders write no EXIF, GPS, XMP or text chunks.
    """
    if lossless or (img.ndim == 3 and img.shape[2] == 4):
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        fmt = "png"
    else:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        fmt = "jpeg"
    if not ok:
        raise RejectedInput(Reason.CORRUPT, f"re-encoding to {fmt} failed")
    return buf.tobytes(), fmt


def thumbnail(img: Image, *, side: int) -> bytes:
    """A JPEG whose longest side is `side`; alpha is composited over white."""
    small, _ = shrink(img, side)
    if small.ndim == 3 and small.shape[2] == 4:
        alpha = small[:, :, 3:4].astype(np.float32) / 255.0
        small = (small[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise RejectedInput(Reason.CORRUPT, "thumbnail encoding failed")
    return buf.tobytes()


def sanitize_image(data: bytes, *, config: SanitizeConfig, name: str = "") -> dict[str, Any]:
    """Turns an image file's bytes into the intrinsic columns of an `assets` row.

    Args:
        data: The source file's bytes.
        config: Limits and sanitize settings.
        name: The file name (tells `corrupt` from `unsupported_format`).

    Returns:
        Every `assets` column except `asset_id`, `run_id` and `ingested_at`.

    Raises:
        RejectedInput: with the reason code for the quarantine row.
    """
    info = probe(data, max_pixels=config.max_pixels, name=name)
    img = orient(decode(data, info), info.orientation)
    return {
        "media_type": "image",
        "source_format": info.format,
        "source_bytes": len(data),
        "orientation": info.orientation,
        "captured_at": info.captured_at,
        **sanitize_pixels(img, config=config, lossless=info.format in LOSSLESS_FORMATS),
    }


def boxes_json(found: list[NamedBox]) -> str:
    """The `blurred_boxes` column: detector and box of each blurred region, as JSON."""
    return json.dumps(
        [{"detector": name, "x": x, "y": y, "w": w, "h": h} for name, (x, y, w, h) in found],
        separators=(",", ":"),
    )


def sanitize_pixels(img: Image, *, config: SanitizeConfig, lossless: bool) -> dict[str, Any]:
    """Metrics and hashes of upright pixels, then the blur, re-encoding and thumbnail.

    What images and video frames share. Returns the `assets` columns `format`,
    `stored_bytes`, `blurred_regions`, `blurred_boxes`, `data`, `thumbnail` and the
    quality metrics. `blurred_boxes` is the audit of the blur: a JSON list of
    `{"detector", "x", "y", "w", "h"}` in stored pixels, `[]` when the detectors found
    nothing, None when blurring was off.
    """
    # One reduced copy serves detection, hashes, the grayscale test and the thumbnail.
    small, scale = shrink(img, config.detect_max_side)
    gray = to_gray(img)
    gray_small = to_gray(small)
    metrics = quality_metrics(img, gray, gray_small, small)
    found: list[NamedBox] = []
    audit = None
    if config.blur and config.detectors:
        names = tuple(config.detectors)
        timeout = config.detector_timeout_s
        detectors = load_detectors(names, timeout)
        found = detect_regions(gray_small, scale, detectors, names, timeout_s=timeout)
        if found:
            img = blur_regions(img.copy(), [box for _, box in found])
            small, _ = shrink(img, config.detect_max_side)
        audit = boxes_json(found)
    encoded, fmt = encode(img, lossless=lossless, jpeg_quality=config.jpeg_quality)
    return {
        "format": fmt,
        **metrics,
        "stored_bytes": len(encoded),
        "blurred_regions": len(found),
        "blurred_boxes": audit,
        "data": encoded,
        "thumbnail": thumbnail(small, side=config.thumbnail_side),
    }
