"""Small generated videos for tests and benchmarks (PyAV's wheel brings libx264)."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from smartray.types import Image

# Scene colours (BGR), each far from the one before it.
PALETTE = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255),
                    (255, 0, 255)], dtype=np.float32)  # fmt: skip


def scene_frames(seconds: float, fps: int, scene_s: float, width: int = 128, height: int = 96,
                 seed: int = 0) -> Iterable[Image]:  # fmt: skip
    """BGR frames: a new scene (colour and wave pattern) every `scene_s` seconds.

    Each scene drifts slowly, so consecutive frames differ a little.
    """
    rng = np.random.default_rng(seed)
    n, per_scene = round(seconds * fps), max(1, round(scene_s * fps))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    colour = freq = np.zeros(3)
    for i in range(n):
        if i % per_scene == 0:
            colour = PALETTE[(i // per_scene) % len(PALETTE)]
            freq = rng.uniform(0.02, 0.15, 3)
        phase = 0.02 * (i % per_scene)
        waves = [0.5 + 0.5 * np.sin(freq[c] * x + freq[(c + 1) % 3] * y + phase) for c in range(3)]
        image = np.stack([0.5 * colour[c] + 127 * waves[c] for c in range(3)], axis=-1)
        yield np.clip(image, 0, 255).astype(np.uint8)


def write_video(path: str | Path, frames: Iterable[Image], fps: int, codec: str = "libx264",
                gop: int | None = None, options: dict[str, str] | None = None,
                container_options: dict[str, str] | None = None) -> Path:  # fmt: skip
    """Encodes BGR frames into `path` (container from the extension)."""
    path = Path(path)
    with av.open(str(path), mode="w", options=container_options or {}) as out:
        stream: av.video.stream.VideoStream | None = None
        for image in frames:
            if stream is None:
                added = out.add_stream(codec, rate=fps, options=options or {})
                assert isinstance(added, av.video.stream.VideoStream), codec
                stream = added
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
                if gop is not None:
                    stream.codec_context.gop_size = gop
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    return path


def write_vfr_video(path: str | Path, times_s: list[float], width: int = 128,
                    height: int = 96) -> Path:  # fmt: skip
    """An H.264 MP4 whose frames are shown at the given times (a variable frame rate).

    Frame i is a flat gray of level 40 + 8 * i (so each is different).
    """
    path = Path(path)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=1000)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_s):
            image = np.full((height, width, 3), (40 + 8 * i) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """An MP4 with one AAC audio stream and no video."""
    path = Path(path)
    rate = 8000
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("aac", rate=rate)
        samples = (np.sin(np.arange(int(rate * seconds)) / 10) * 0.3).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    return path
