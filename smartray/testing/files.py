"""Image files for tests and the demo, made from numpy pixels: good ones and broken ones.

Every function returns the file's bytes; nothing is downloaded.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from smartray.sanitize.cv import cv2

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
ORIENTATION = 0x0112
DATETIME_ORIGINAL = 0x9003


def pattern(height: int = 8, width: int = 8, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A deterministic 8-bit test picture (gradients plus noise), BGR when 3 channels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = ((x * 255) // max(1, width - 1) + (y * 128) // max(1, height - 1)) % 256
    planes = [(base + 60 * c + rng.integers(0, 30, size=base.shape)) % 256 for c in range(channels)]
    arr = np.stack(planes, axis=-1).astype(np.uint8)
    return arr[:, :, 0] if channels == 1 else arr


def jpeg(img: np.ndarray, quality: int = 92) -> bytes:
    """JPEG bytes of a gray or BGR image."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return bytes(buf.tobytes())


def png(img: np.ndarray) -> bytes:
    """PNG bytes of a gray, BGR, BGRA or 16-bit image."""
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return bytes(buf.tobytes())


def jpeg_with_exif(
    img: np.ndarray,
    *,
    orientation: int = 1,
    gps: tuple[float, float] | None = (48.8584, 2.2945),
    captured: str | None = "2021:06:01 12:34:56",
) -> bytes:
    """A JPEG carrying EXIF: orientation, GPS position and DateTimeOriginal."""
    rgb = Image.fromarray(img[:, :, ::-1] if img.ndim == 3 else img)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "SmartrayTestCam"  # Make
    if captured:
        exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = captured
    if gps:
        lat, lon = gps
        g = exif.get_ifd(GPS_IFD)
        g[1], g[2] = ("N" if lat >= 0 else "S"), _dms(abs(lat))
        g[3], g[4] = ("E" if lon >= 0 else "W"), _dms(abs(lon))
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", exif=exif.tobytes(), quality=92)
    return buf.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    d = int(value)
    m = int((value - d) * 60)
    s = round(((value - d) * 60 - m) * 60, 2)
    return (float(d), float(m), float(s))


def cmyk_jpeg(height: int = 8, width: int = 8) -> bytes:
    """A CMYK JPEG (as print workflows make them)."""
    im = Image.fromarray(pattern(height, width, 3)[:, :, ::-1]).convert("CMYK")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def png16(height: int = 8, width: int = 8) -> bytes:
    """A 16-bit grayscale PNG."""
    return png(pattern(height, width, 1).astype(np.uint16) * 257)


def rgba_png(height: int = 8, width: int = 8) -> bytes:
    """An RGBA PNG with a transparent half."""
    img = pattern(height, width, 4)
    img[:, : width // 2, 3] = 0
    img[:, width // 2 :, 3] = 255
    return png(img)


def animated_gif(height: int = 8, width: int = 8, frames: int = 3) -> bytes:
    """An animated GIF whose first frame is pure red, the next green, then blue."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    ims = [Image.new("RGB", (width, height), colours[i % 3]) for i in range(frames)]
    buf = io.BytesIO()
    ims[0].save(buf, "GIF", save_all=True, append_images=ims[1:], duration=100, loop=0)
    return buf.getvalue()


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    """The first `keep` fraction of a file, as a broken download leaves it."""
    return data[: max(1, int(len(data) * keep))]


def png_bomb_header(width: int = 30000, height: int = 30000) -> bytes:
    """A small, complete PNG whose header declares `width` x `height` RGB pixels.

    Its IDAT holds only a few rows, so a decoder that trusts the header allocates
    gigabytes; smartray must refuse it from the header alone.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def random_bytes(n: int = 2048, seed: int = 0) -> bytes:
    """Bytes that are no image (to be named `.jpg`)."""
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
