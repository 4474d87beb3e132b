"""Decode a video with PyAV and keep the frames `FrameSampler` chooses (Ray-free).

`sample_video` runs in the calling process; `smartray.video.isolated` runs it in a child
process, because PyAV has had segfaults on truncated streams that no `except` catches.

Only the video stream's pixels and stream facts leave this module: container metadata
(tags, an MP4 location atom) is never read into the result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction

import av

from smartray.sanitize.cv import cv2
from smartray.sanitize.ops import phash
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


def _open(path: str) -> av.container.InputContainer:
    if os.path.getsize(path) == 0:
        raise RejectedInput(Reason.EMPTY, "zero bytes")
    try:
        return av.open(path, mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise RejectedInput(Reason.CORRUPT, f"not a readable video container: {e}") from None


def probe(container: av.container.InputContainer, max_pixels: int) -> VideoInfo:
    """The first video stream's facts; RejectedInput if there is none or it is too big."""
    if not container.streams.video:
        kinds = sorted({str(s.type) for s in container.streams}) or ["none"]
        raise RejectedInput(
            Reason.UNSUPPORTED_FORMAT, f"no video stream (streams: {', '.join(kinds)})"
        )
    stream = container.streams.video[0]
    ctx = stream.codec_context
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


def sample_video(path: str, config: SamplingConfig, max_pixels: int) -> SampledVideo:
    """Decodes `path` and returns its facts and the frames the sampler keeps.

    Raises:
        RejectedInput: empty, not a video container, no video stream, frames over
            `max_pixels`, or a stream that fails to decode before any frame.
    """
    with _open(path) as container:
        info = probe(container, max_pixels)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if config.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"  # the decoder skips all but intra
        result = SampledVideo(info)
        sampler = FrameSampler(config)
        try:
            for frame in container.decode(stream):
                index = result.decoded
                result.decoded += 1
                t = _seconds(frame, index, info.fps)
                if config.keyframes_only and info.fps > 0:
                    index = round(t * info.fps)  # skipped frames still count
                small = frame.reformat(*COMPARE_SIZE, format="bgr24").to_ndarray()
                gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
                decision = sampler.offer(t, small, bool(frame.key_frame), phash(gray))
                if decision.keep:
                    result.frames.append(
                        SampledFrame(
                            index,
                            round(t * 1000),
                            frame.to_ndarray(format="bgr24"),
                            decision.reasons,
                        )
                    )
                if sampler.full:
                    break
        except (av.error.FFmpegError, ValueError) as e:
            if result.decoded == 0:
                raise RejectedInput(Reason.CORRUPT, f"no frame decodes: {e}") from None
            if not result.frames:
                raise RejectedInput(Reason.TRUNCATED, f"stream breaks off: {e}") from None
        if result.decoded == 0:
            raise RejectedInput(Reason.CORRUPT, "the video stream holds no decodable frame")
        return result


def _seconds(frame: av.VideoFrame, index: int, fps: float) -> float:
    if frame.time is not None:
        return max(0.0, float(frame.time))
    return index / fps if fps > 0 else float(index)
