"""Decode a video with PyAV and keep the frames `FrameSampler` chooses (Ray-free).

`sample_video` runs in the calling process; `smartray.video.isolated` runs it in a child
process, because PyAV has had segfaults on truncated streams that no `except` catches.

Only the video stream's pixels and stream facts leave this module: container metadata
(tags, an MP4 location atom) is never read into the result.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import av
import numpy as np

from smartray.sanitize.cv import cv2
from smartray.sanitize.hashes import phash
from smartray.types import Image, Reason, RejectedInput
from smartray.video.sampling import COMPARE_SIZE, FrameSampler, SamplingConfig


@dataclass(frozen=True)
class VideoInfo:
    """Facts of a decodable video's first video stream."""

    container: str
    codec: str
    width: int
    height: int
    fps: float
    duration_s: float
    frame_count: int


@dataclass
class SampledFrame:
    """One kept frame: its index and time in the video, BGR pixels, why it was kept."""

    frame_index: int
    timestamp_ms: int
    image: Image
    reasons: tuple[str, ...]


@dataclass
class SampledVideo:
    """A video's facts and the frames kept from it."""

    info: VideoInfo
    frames: list[SampledFrame] = field(default_factory=list)
    decoded: int = 0  # frames the decoder produced (all of them, or only intra frames)
    kept: int = 0


def _limits(max_pixels: int) -> dict[str, str]:
    """Decoder options that refuse frames over `max_pixels`.

    Opening a file already decodes a few frames (FFmpeg's stream probing) at the size the
    stream declares: a 13 KB MP4 whose H.264 header claims 16000x16000 took 700 MB there
    before `probe` could refuse it. With `max_pixels` set, the decoder refuses to allocate
    such frames, in that probing and in the decode after it.
    """
    return {"max_pixels": str(max_pixels)}


def _open(path: str, max_pixels: int) -> av.container.InputContainer:
    if os.path.getsize(path) == 0:
        raise RejectedInput(Reason.EMPTY, "zero bytes")
    try:
        return av.open(path, mode="r", metadata_errors="ignore", options=_limits(max_pixels))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        if cut_short := _iso_box_cut_short(path):
            raise RejectedInput(Reason.TRUNCATED, cut_short) from None
        raise RejectedInput(Reason.CORRUPT, f"not a readable video container: {e}") from None


def _iso_box_cut_short(path: str) -> str:
    """Why an MP4/MOV file (ISO boxes) was cut short, or "" if it was not, or is no MP4.

    MP4 writers put the index (`moov`) after the media by default, so a cut-off file has
    a box whose declared size runs past the end of the file.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        offset, first = 0, True
        while offset + 8 <= size:
            f.seek(offset)
            head = f.read(16)
            box, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if first and kind != b"ftyp":
                return ""
            first = False
            if box == 1 and len(head) == 16:
                box = int.from_bytes(head[8:16], "big")
            if box == 0:  # runs to the end of the file
                return ""
            if box < 8:
                return ""
            if offset + box > size:
                name = kind.decode("latin-1")
                return f"the {name!r} box needs {offset + box:,} bytes; the file has {size:,}"
            offset += box
    return ""


def probe(container: av.container.InputContainer, max_pixels: int) -> VideoInfo:
    """The first video stream's facts; RejectedInput if there is none or it is too big."""
    if not container.streams.video:
        kinds = sorted({str(s.type) for s in container.streams}) or ["none"]
        raise RejectedInput(
            Reason.UNSUPPORTED_FORMAT, f"no video stream (streams: {', '.join(kinds)})"
        )
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if ctx is None:  # a codec id FFmpeg has no decoder for (a damaged header, say)
        raise RejectedInput(Reason.UNSUPPORTED_FORMAT, "no decoder for its video codec")
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        raise RejectedInput(Reason.CORRUPT, "video stream without a frame size")
    if width * height > max_pixels:
        raise RejectedInput(
            Reason.TOO_MANY_PIXELS, f"{width}x{height} frames exceed {max_pixels} pixels"
        )
    rate = stream.average_rate or stream.guessed_rate or Fraction(0)
    fps = float(rate)
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    frames = int(stream.frames or round(duration * fps))
    return VideoInfo(
        container=str(container.format.name),
        codec=str(ctx.name),
        width=width,
        height=height,
        fps=round(fps, 6),
        duration_s=round(duration, 6),
        frame_count=frames,
    )


def sample_video(
    path: str,
    config: SamplingConfig,
    max_pixels: int,
    on_frame: Callable[[SampledFrame], None] | None = None,
    threads: int = 1,
) -> SampledVideo:
    """Decodes `path` and returns its facts and the frames the sampler keeps.

    With `on_frame`, each kept frame goes to it as soon as it is decoded (and is not
    kept in the result), so a long video never holds all its frames in memory.

    Raises:
        RejectedInput: empty, not a video container, no video stream, frames over
            `max_pixels`, or a stream that fails to decode before any frame.
    """
    with _open(path, max_pixels) as container:
        info = probe(container, max_pixels)
        stream = container.streams.video[0]
        stream.codec_context.options = _limits(max_pixels)
        stream.thread_type = "AUTO"
        stream.thread_count = threads  # a Ray task has one CPU
        # The decoder skips what no mode looks at: all but intra frames for keyframes only;
        # otherwise the frames no other frame references (B-frames, often half of them),
        # except in the half second before each rate tick. Scene changes are looked for
        # on the frames decoded (an encoder makes a cut a reference frame anyway).
        ctx = stream.codec_context
        skip: SkipFrame = "NONKEY" if config.keyframes_only else "DEFAULT"
        ctx.skip_frame = skip
        result = SampledVideo(info)
        sampler = FrameSampler(config)
        start = 0.0
        if stream.start_time and stream.time_base is not None:
            start = float(stream.start_time * stream.time_base)
        order = _presentation_order(path, max_pixels)
        try:
            for frame in container.decode(stream):
                t = _seconds(frame, result.decoded, info.fps) - start
                result.decoded += 1
                if not config.keyframes_only:
                    soon = sampler.rate_due_within(t, RATE_LOOKAHEAD_S)
                    want: SkipFrame = "DEFAULT" if soon else "NONREF"
                    if want != skip:
                        skip = ctx.skip_frame = want
                # The index is the frame's place in presentation order, from the packets'
                # timestamps: every sampling mode (keyframes decode only a few frames)
                # names a frame the same way, at a variable frame rate too.
                index = result.decoded - 1
                if frame.pts is not None and order:
                    index = bisect.bisect_left(order, frame.pts)
                is_key = bool(frame.key_frame)
                if not sampler.candidate(t, is_key):
                    continue  # no mode could keep it: no thumbnail, no hash
                small, gray = thumbnails(frame)
                decision = sampler.offer(t, small, is_key, phash(gray))
                if decision.keep:
                    kept = SampledFrame(
                        index, round(t * 1000), frame.to_ndarray(format="bgr24"), decision.reasons
                    )
                    if on_frame is None:
                        result.frames.append(kept)
                    else:
                        on_frame(kept)
                    result.kept += 1
                if sampler.full:
                    break
        except (av.error.FFmpegError, ValueError) as e:
            if result.decoded == 0:
                raise RejectedInput(Reason.CORRUPT, f"no frame decodes: {e}") from None
            raise RejectedInput(
                Reason.TRUNCATED, f"the stream breaks off after {result.decoded} frames: {e}"
            ) from None
        if result.decoded == 0:
            raise RejectedInput(Reason.CORRUPT, "the video stream holds no decodable frame")
        return result


SkipFrame = Literal["DEFAULT", "NONREF", "NONKEY"]
RATE_LOOKAHEAD_S = 0.5  # decode every frame this long before a rate tick

_PLANAR_420 = frozenset({"yuv420p", "yuvj420p"})


def thumbnails(frame: av.VideoFrame) -> tuple[Image, Image]:
    """The frame at COMPARE_SIZE in its own colour planes (for differences), and gray.

    For 4:2:0 YUV (nearly every camera and phone video) the planes are shrunk directly,
    ~10x cheaper than converting the frame to BGR first; other formats are converted.
    """
    if frame.format.name in _PLANAR_420:
        planes = []
        for i, plane in enumerate(frame.planes):
            h = frame.height if i == 0 else (frame.height + 1) // 2
            w = frame.width if i == 0 else (frame.width + 1) // 2
            view = np.frombuffer(memoryview(plane), np.uint8).reshape(h, plane.line_size)[:, :w]
            planes.append(cv2.resize(view, COMPARE_SIZE, interpolation=cv2.INTER_AREA))
        return np.dstack(planes), planes[0]
    small = frame.reformat(*COMPARE_SIZE, format="bgr24").to_ndarray()
    return small, cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


def _presentation_order(path: str, max_pixels: int) -> list[int]:
    """The sorted timestamps of the video stream's packets (read, not decoded)."""
    try:
        with _open(path, max_pixels) as container:
            stream = container.streams.video[0]
            return sorted(
                p.pts for p in container.demux(stream) if p.pts is not None and p.size > 0
            )
    except (av.error.FFmpegError, ValueError, RejectedInput):
        return []  # the decode that follows says what is wrong


def _seconds(frame: av.VideoFrame, index: int, fps: float) -> float:
    if frame.time is not None:
        return max(0.0, float(frame.time))
    return index / fps if fps > 0 else float(index)
