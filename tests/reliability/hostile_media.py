"""Seed media and seeded mutations for the hostile-input tests (test_fuzz.py, test_bombs.py).

Seeds are real pictures and videos: the demo corpus's photos (scikit-image) re-encoded
as JPEG, PNG, WebP and GIF at a reduced size, and short H.264 MP4 clips cut from
opencv-doc's sample videos (`vtest.avi`, `Megamind.avi`). Mutations are what broken
downloads and hostile files do: bit flips, byte runs, truncation, edited header fields
(dimensions), duplicated chunks, and splices of two files.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from smartray.demo import corpus
from smartray.sanitize.cv import cv2

SEED_SIDE = 192  # longest side of the image seeds: decode stays cheap, headers stay real


def image_seeds(photo_dir: Path) -> dict[str, bytes]:
    """The demo photos (`build_corpus`) re-encoded as JPEG, PNG, WebP and GIF."""
    seeds: dict[str, bytes] = {}
    for path in sorted(photo_dir.glob("*.jpg")):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        h, w = img.shape[:2]
        scale = SEED_SIDE / max(h, w)
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))))
        stem = path.stem.replace(" ", "-")
        rgb = Image.fromarray(img[:, :, ::-1])
        seeds[f"{stem}.jpg"] = _pil(rgb, "JPEG", quality=85)
        seeds[f"{stem}-progressive.jpg"] = _pil(rgb, "JPEG", quality=80, progressive=True)
        seeds[f"{stem}.png"] = bytes(cv2.imencode(".png", img)[1].tobytes())
        seeds[f"{stem}.webp"] = _pil(rgb, "WEBP", quality=80)
        seeds[f"{stem}-lossless.webp"] = _pil(rgb, "WEBP", lossless=True)
        pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
        seeds[f"{stem}.gif"] = _pil(pal, "GIF")
        frames = [pal, pal.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
        seeds[f"{stem}-animated.gif"] = _pil(
            frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0
        )
    return seeds


def video_seeds(out_dir: Path, *, frames: int = 12, side: int = 128) -> dict[str, bytes]:
    """Short H.264 MP4 clips of opencv-doc's sample videos (empty if none is found)."""
    import av

    from smartray.testing.videos import write_video

    seeds: dict[str, bytes] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in corpus.real_videos():
        images = []
        with av.open(str(src)) as c:
            for frame in c.decode(video=0):
                img = frame.to_ndarray(format="bgr24")
                h, w = img.shape[:2]
                size = (side, max(2, round(h * side / w)) // 2 * 2)
                images.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
                if len(images) == frames:
                    break
        for gop in (4, 12):
            path = out_dir / f"{src.stem}-gop{gop}.mp4"
            write_video(path, images, fps=10, gop=gop)
            seeds[path.name] = path.read_bytes()
    return seeds


def _pil(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# --- mutations: each takes (data, rng, other seeds) and returns new bytes -------------


def bit_flips(d: bytes, rng: np.random.Generator, _: list[bytes]) -> bytes:
    b = bytearray(d)
    for _i in range(int(rng.integers(1, 17))):
        pos = int(rng.integers(0, len(b)))
        b[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(b)


def byte_run(d: bytes, rng: np.random.Generator, _: list[bytes]) -> bytes:
    b = bytearray(d)
    n = int(rng.integers(1, 65))
    pos = int(rng.integers(0, max(1, len(b) - n)))
    run = rng.choice([0x00, 0xFF, int(rng.integers(0, 256))])
    fill = bytes([run]) * n if rng.random() < 0.6 else rng.bytes(n)
    b[pos : pos + n] = fill
    return bytes(b)


def truncate(d: bytes, rng: np.random.Generator, _: list[bytes]) -> bytes:
    return d[: int(rng.integers(1, len(d)))] if len(d) > 1 else d


def duplicate_chunk(d: bytes, rng: np.random.Generator, _: list[bytes]) -> bytes:
    spans = _structural_spans(d)
    if spans and rng.random() < 0.7:
        a, b = spans[int(rng.integers(0, len(spans)))]
    else:
        a = int(rng.integers(0, len(d)))
        b = min(len(d), a + int(rng.integers(1, 512)))
    chunk = d[a:b]
    at = b if rng.random() < 0.5 else int(rng.integers(0, len(d) + 1))
    return d[:at] + chunk * int(rng.integers(1, 4)) + d[at:]


def splice(d: bytes, rng: np.random.Generator, others: list[bytes]) -> bytes:
    other = others[int(rng.integers(0, len(others)))]
    a = int(rng.integers(1, len(d) + 1))
    b = int(rng.integers(0, len(other)))
    return d[:a] + other[b:]


def header_dims(d: bytes, rng: np.random.Generator, _: list[bytes]) -> bytes:
    """Edits the declared width/height where the format keeps them."""
    w, h = (int(v) for v in rng.choice(_DIMS, 2))
    b = bytearray(d)
    if d[:8] == b"\x89PNG\r\n\x1a\n" and len(d) >= 33:
        struct.pack_into(">II", b, 16, w, h)
        if rng.random() < 0.7:  # a right CRC gets past the checksum
            struct.pack_into(">I", b, 29, zlib.crc32(bytes(b[12:29])))
    elif d[:3] == b"\xff\xd8\xff":
        for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):
            i = d.find(marker)
            if i > 0 and i + 9 <= len(d):
                struct.pack_into(">HH", b, i + 5, h & 0xFFFF, w & 0xFFFF)
                break
    elif d[:3] == b"GIF" and len(d) >= 10:
        struct.pack_into("<HH", b, 6, w & 0xFFFF, h & 0xFFFF)
        i = d.find(b"\x2c", 13)
        if i > 0 and i + 9 <= len(d) and rng.random() < 0.5:
            struct.pack_into("<HH", b, i + 5, w & 0xFFFF, h & 0xFFFF)
    elif d[:4] == b"RIFF" and d[8:12] == b"WEBP":
        _webp_dims(b, w, h)
    elif d[4:8] == b"ftyp":
        for box, off, fmt in ((b"avc1", 28, ">HH"), (b"tkhd", 80, ">II")):
            i = d.find(box)
            if i > 0 and i + off + 8 <= len(d):
                vals = (w & 0xFFFF, h & 0xFFFF) if fmt == ">HH" else (w << 16, h << 16)
                struct.pack_into(fmt, b, i + off, *(v & 0xFFFFFFFF for v in vals))
        if rng.random() < 0.5:
            return set_sps_dims(bytes(b), w, h)
    else:
        return bit_flips(d, rng, [])
    return bytes(b)


_DIMS = np.array([0, 1, 2, 7, 255, 4097, 16383, 30000, 65535, 100000, 1 << 20], dtype=np.int64)


def _webp_dims(b: bytearray, w: int, h: int) -> None:
    kind = bytes(b[12:16])
    if kind == b"VP8 " and len(b) >= 30:
        struct.pack_into("<HH", b, 26, w & 0x3FFF, h & 0x3FFF)
    elif kind == b"VP8L" and len(b) >= 25:
        bits = ((w - 1) & 0x3FFF) | (((h - 1) & 0x3FFF) << 14)
        old = struct.unpack_from("<I", b, 21)[0]
        struct.pack_into("<I", b, 21, (old & 0xF0000000) | bits)
    elif kind == b"VP8X" and len(b) >= 30:
        b[24:27] = ((w - 1) & 0xFFFFFF).to_bytes(3, "little")
        b[27:30] = ((h - 1) & 0xFFFFFF).to_bytes(3, "little")


def _structural_spans(d: bytes) -> list[tuple[int, int]]:
    """Whole chunks (PNG), segments (JPEG) or top-level boxes (MP4) of a file."""
    spans: list[tuple[int, int]] = []
    if d[:8] == b"\x89PNG\r\n\x1a\n":
        i = 8
        while i + 12 <= len(d):
            (n,) = struct.unpack_from(">I", d, i)
            spans.append((i, min(len(d), i + 12 + n)))
            i += 12 + n
    elif d[:2] == b"\xff\xd8":
        i = 2
        while i + 4 <= len(d) and d[i] == 0xFF and d[i + 1] != 0xDA:
            (n,) = struct.unpack_from(">H", d, i + 2)
            spans.append((i, min(len(d), i + 2 + n)))
            i += 2 + n
    elif d[4:8] == b"ftyp":
        for _, a, b, _c in iso_boxes(d, 0, len(d)):
            spans.append((a, b))
    return spans


MUTATIONS: dict[str, Callable[[bytes, np.random.Generator, list[bytes]], bytes]] = {
    "bit_flips": bit_flips,
    "byte_run": byte_run,
    "truncate": truncate,
    "header_dims": header_dims,
    "duplicate_chunk": duplicate_chunk,
    "splice": splice,
}


def mutate(data: bytes, rng: np.random.Generator, others: list[bytes]) -> tuple[bytes, list[str]]:
    """One to three mutations of `data`, chosen and applied with `rng`."""
    names = list(MUTATIONS)
    chosen = [names[int(i)] for i in rng.integers(0, len(names), int(rng.integers(1, 4)))]
    for name in chosen:
        data = MUTATIONS[name](data, rng, others)
        if not data:
            data = b"\x00"
    return data, chosen


# --- ISO boxes and H.264 parameter sets: a video that claims any frame size -----------

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta"}
_SKIP = {b"stsd": 8, b"avc1": 78}  # bytes of fields before a box's children


def iso_boxes(d: bytes, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """(type, start, end, header size) of the boxes in d[start:end], one level."""
    out, i = [], start
    while i + 8 <= end:
        size, kind = struct.unpack_from(">I4s", d, i)
        head = 8
        if size == 1 and i + 16 <= end:
            size, head = struct.unpack_from(">Q", d, i + 8)[0], 16
        elif size == 0:
            size = end - i
        if size < head or i + size > end:
            break
        out.append((kind, i, i + size, head))
        i += size
    return out


def _rebuild(d: bytes, start: int, end: int, edit: Callable[[bytes], bytes | None]) -> bytes:
    parts = []
    for kind, a, b, head in iso_boxes(d, start, end):
        body_start = a + head
        replaced = edit(kind)
        if kind == b"avcC" and replaced is not None:
            body = replaced
        elif kind in _CONTAINERS or kind in _SKIP:
            skip = _SKIP.get(kind, 0)
            body = d[body_start : body_start + skip] + _rebuild(d, body_start + skip, b, edit)
        else:
            body = d[body_start:b]
        parts.append(struct.pack(">I4s", 8 + len(body), kind) + body)
    return b"".join(parts)


def set_sps_dims(mp4: bytes, width: int, height: int) -> bytes:
    """The MP4 with its H.264 SPS (in `avcC`) declaring `width` x `height` pixels.

    The media data stays as it was (the index follows it in PyAV's files, so no chunk
    offset moves); only the sequence parameter set's frame size changes.
    """
    i = mp4.find(b"avcC")
    if i < 4:
        return mp4
    (size,) = struct.unpack_from(">I", mp4, i - 4)
    avcc = mp4[i + 4 : i - 4 + size]
    if len(avcc) < 8:
        return mp4
    n_sps = avcc[5] & 0x1F
    if n_sps < 1:
        return mp4
    (sps_len,) = struct.unpack_from(">H", avcc, 6)
    sps = avcc[8 : 8 + sps_len]
    try:
        new_sps = _sps_with_size(sps, width, height)
    except (IndexError, ValueError):
        return mp4
    new_avcc = avcc[:6] + struct.pack(">H", len(new_sps)) + new_sps + avcc[8 + sps_len :]
    return _rebuild(mp4, 0, len(mp4), lambda kind: new_avcc if kind == b"avcC" else None)


class _Bits:
    def __init__(self, data: bytes):
        self.bits = "".join(f"{x:08b}" for x in data)
        self.pos = 0

    def u(self, n: int) -> int:
        v = int(self.bits[self.pos : self.pos + n] or "0", 2)
        if self.pos + n > len(self.bits):
            raise ValueError("SPS ends early")
        self.pos += n
        return v

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + (self.u(zeros) if zeros else 0)


def _ue(v: int) -> str:
    code = f"{v + 1:b}"
    return "0" * (len(code) - 1) + code


def _unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for x in rbsp:
        if zeros >= 2 and x <= 3:
            out.append(3)
            zeros = 0
        out.append(x)
        zeros = zeros + 1 if x == 0 else 0
    return bytes(out)


def _sps_with_size(sps: bytes, width: int, height: int) -> bytes:
    """An H.264 SPS NAL unit like `sps` but declaring width x height (no cropping)."""
    r = _Bits(_unescape(sps[1:]))
    profile = r.u(8)
    r.u(16)  # constraint flags, level
    r.ue()  # sps id
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        if r.ue() == 3:  # chroma_format_idc
            r.u(1)
        r.ue()
        r.ue()
        r.u(1)
        if r.u(1):
            raise ValueError("scaling matrices: not rewritten")
    r.ue()  # log2_max_frame_num_minus4
    poc = r.ue()
    if poc == 0:
        r.ue()
    elif poc == 1:
        raise ValueError("poc type 1: not rewritten")
    r.ue()  # max_num_ref_frames
    r.u(1)
    head = r.bits[: r.pos]
    r.ue()
    r.ue()
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.u(1)
    direct = r.u(1)
    if r.u(1):  # cropping: dropped
        r.ue()
        r.ue()
        r.ue()
        r.ue()
    tail = r.bits[r.pos :]
    mbs_w = max(1, -(-width // 16))
    mbs_h = max(1, -(-height // 16))
    bits = (
        head
        + _ue(mbs_w - 1)
        + _ue(mbs_h - 1)
        + "1"  # frame_mbs_only
        + str(direct)
        + "0"  # no cropping
        + tail
    )
    bits = bits.rstrip("0")  # ends with the old stop bit; realigned below
    bits += "0" * (-len(bits) % 8)
    rbsp = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    return sps[:1] + _escape(rbsp)
