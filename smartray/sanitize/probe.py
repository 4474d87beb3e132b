"""Look at an image's bytes before decoding: format, declared size, completeness, EXIF.

Everything here reads headers and markers only, so a 30000x30000 PNG bomb is refused
without allocating its pixels.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image

from smartray.types import Reason, RejectedInput

# smartray checks pixel counts itself (from the header, against its own limit).
Image.MAX_IMAGE_PIXELS = None

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".webp"}
)
# Formats smartray stores losslessly (PNG) when re-encoding.
LOSSLESS_FORMATS = frozenset({"png", "gif", "bmp", "tiff"})

_EXIF_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003


@dataclass(frozen=True)
class Probe:
    """What the header says about an image.

    Attributes:
        format: jpeg, png, gif, bmp, tiff or webp.
        width: Declared width in pixels (before orientation).
        height: Declared height in pixels.
        mode: Pillow's mode name (L, RGB, RGBA, CMYK, I;16, P, ...).
        frames: Frames in the file (animated GIF/WebP > 1; the first is used).
        orientation: EXIF orientation 1..8 (1 when absent or invalid).
        captured_at: EXIF DateTimeOriginal, if present and valid.
    """

    format: str
    width: int
    height: int
    mode: str
    frames: int
    orientation: int
    captured_at: dt.datetime | None


def sniff_format(data: bytes) -> str | None:
    """The image format from the magic bytes, or None if not one smartray reads."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check_complete(data: bytes, fmt: str) -> None:
    """Raises `truncated` if the file ends before its format's end marker.

    A decoder often returns pixels for a cut-off file (the missing rows grey); this
    catches what it hides: a JPEG without its EOI after the scan, a PNG without IEND, a
    GIF without its trailer.
    """
    if fmt == "jpeg":
        sos = _jpeg_scan_start(data)
        if sos < 0 or data.rfind(b"\xff\xd9") < sos:
            raise RejectedInput(Reason.TRUNCATED, "JPEG has no end-of-image marker after its scan")
    elif fmt == "png":
        if not _png_has_iend(data):
            raise RejectedInput(Reason.TRUNCATED, "PNG ends before its IEND chunk")
    elif fmt == "gif" and b";" not in data[-16:]:
        raise RejectedInput(Reason.TRUNCATED, "GIF has no trailer byte")


def probe(data: bytes, *, max_pixels: int, name: str = "") -> Probe:
    """Reads format, size, frames and EXIF from the header; checks limits and completeness.

    Args:
        data: The whole file.
        max_pixels: Largest accepted width x height.
        name: File name, used to tell `corrupt` (claims to be an image) from
            `unsupported_format`.

    Raises:
        RejectedInput: empty, unsupported_format, corrupt, too_many_pixels or truncated.
    """
    if not data:
        raise RejectedInput(Reason.EMPTY, "zero bytes")
    fmt = sniff_format(data)
    if fmt is None:
        ext = name[name.rfind(".") :].lower() if "." in name else ""
        if ext in IMAGE_EXTENSIONS:
            raise RejectedInput(
                Reason.CORRUPT, f"named {ext} but its bytes are no known image format"
            )
        raise RejectedInput(
            Reason.UNSUPPORTED_FORMAT,
            f"not an image format smartray reads ({ext or 'no extension'})",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
            width, height = im.size
            mode = im.mode
    except Exception as e:
        # A header that cannot be parsed: cut inside the header is still "truncated".
        if isinstance(e, (EOFError, struct.error)) or "truncated" in str(e).lower():
            raise RejectedInput(Reason.TRUNCATED, f"header cut short: {e}") from None
        raise RejectedInput(Reason.CORRUPT, f"{fmt} header does not parse: {e}") from None
    if width <= 0 or height <= 0:
        raise RejectedInput(Reason.CORRUPT, f"header declares {width}x{height} pixels")
    if width * height > max_pixels:
        raise RejectedInput(
            Reason.TOO_MANY_PIXELS,
            f"header declares {width}x{height} = {width * height:,} pixels; limit {max_pixels:,}",
        )
    check_complete(data, fmt)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = int(getattr(im, "n_frames", 1)) if fmt in ("gif", "webp") else 1
    except Exception as e:
        raise RejectedInput(Reason.CORRUPT, f"{fmt} frames do not parse: {e}") from None
    if frames > 1 and frames * width * height > max_pixels:
        # Only the first frame is decoded here, but whatever plays or converts the
        # animation later (a viewer, an annotation tool) renders every frame.
        raise RejectedInput(
            Reason.TOO_MANY_PIXELS,
            f"{frames:,} frames of {width}x{height} = {frames * width * height:,} pixels; "
            f"limit {max_pixels:,}",
        )
    orientation, captured = _exif(im, fmt)
    return Probe(fmt, width, height, mode, frames, orientation, captured)


def _exif(im: Image.Image, fmt: str) -> tuple[int, dt.datetime | None]:
    """Orientation and capture time, read without decoding any pixels.

    Pillow's `getexif()` decodes a whole PNG (or GIF) to look for EXIF after the image
    data, so those formats use only the EXIF block seen in the header.
    """
    try:
        if fmt in ("jpeg", "tiff"):
            exif = im.getexif()  # parsed from APP1 / the IFD, pixels untouched
        else:
            exif = Image.Exif()
            raw = im.info.get("exif")
            if isinstance(raw, bytes) and raw:
                exif.load(raw)
    except Exception:  # broken EXIF is dropped anyway; the pixels may still be good
        return 1, None
    orientation = exif.get(_EXIF_ORIENTATION, 1)
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        orientation = 1
    captured = None
    try:
        raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL)
    except Exception:
        raw = None
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if isinstance(raw, str):
        try:
            captured = dt.datetime.strptime(raw.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            captured = None
    return orientation, captured


def _jpeg_scan_start(data: bytes) -> int:
    """Offset of the first top-level SOS marker, skipping segments by their lengths."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return -1
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:
            return i
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return -1


def _png_has_iend(data: bytes) -> bool:
    """Walks the chunk list by lengths; True if it reaches a whole IEND chunk."""
    i, n = 8, len(data)
    while i + 8 <= n:
        (length,) = struct.unpack(">I", data[i : i + 4])
        ctype = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            return False
        if ctype == b"IEND":
            return True
        i = end
    return False
