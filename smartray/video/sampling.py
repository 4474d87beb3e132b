"""Which frames of a video become assets: rate, keyframes and scene changes, combinable.

Pure and Ray-free: `FrameSampler` sees each decoded candidate frame once, in order, as a
small BGR thumbnail with its time, and says whether to keep it. The decoder
(`smartray.video.decode`) decides which frames are candidates: every frame, or only the
intra frames when nothing but keyframes is asked for.

Default (no flag given): keyframes plus scene changes, at most one frame per second, at
most 300 frames per video. Consecutive kept frames that are near-identical (perceptual
hash distance under `dedupe_distance`) are dropped whatever the mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from smartray.sanitize.hashes import hamming
from smartray.types import Image

# Frames are compared on this small thumbnail, in the video's colour planes (YUV for
# nearly all video) or BGR: cheap, robust to noise, and it sees changes of hue.
COMPARE_SIZE = (64, 36)


class SamplingConfig(BaseModel):
    """How frames are chosen. With no mode set, keyframes and scene changes are used."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fps: float | None = Field(None, gt=0, description="keep frames at this rate")
    keyframes: bool = Field(False, description="keep intra frames")
    scenes: bool = Field(False, description="keep frames where the scene changes")
    scene_threshold: float = Field(
        0.05, gt=0, le=1, description="mean absolute difference (0-1) from the last kept frame"
    )
    min_gap_s: float = Field(1.0, ge=0, description="at least this long between kept frames")
    max_frames: int = Field(300, ge=1, description="at most this many frames per video")
    dedupe_distance: int = Field(
        4, ge=0, le=64, description="drop a frame whose phash is this close to the last kept"
    )

    @model_validator(mode="after")
    def _default_modes(self) -> SamplingConfig:
        if self.fps is None and not self.keyframes and not self.scenes:
            object.__setattr__(self, "keyframes", True)
            object.__setattr__(self, "scenes", True)
        return self

    @property
    def keyframes_only(self) -> bool:
        """Only intra frames can be kept: the decoder may skip every other frame."""
        return self.keyframes and not self.scenes and self.fps is None


@dataclass
class Decision:
    """Why a frame was kept (`reasons`) or not (`reasons` empty, `dropped` says why)."""

    keep: bool
    reasons: tuple[str, ...] = ()
    dropped: str = ""


class FrameSampler:
    """Decides, frame by frame, which frames of one video to keep."""

    def __init__(self, config: SamplingConfig):
        self.config = config
        self.kept = 0
        self._last_t: float | None = None
        self._last_small: np.ndarray | None = None
        self._last_hash: int | None = None
        self._next_rate_t = 0.0

    @property
    def full(self) -> bool:
        """The cap is reached: decoding can stop."""
        return self.kept >= self.config.max_frames

    def rate_due_within(self, t: float, horizon_s: float) -> bool:
        """Whether a rate tick falls within `horizon_s` after `t` (or is already due)."""
        return self.config.fps is not None and t + horizon_s >= self._next_rate_t

    def candidate(self, t: float, is_key: bool) -> bool:
        """Whether any mode could keep the frame at `t` (cheap: decide before looking)."""
        cfg = self.config
        if self.full:
            return False
        if cfg.scenes:
            return True  # every frame is compared with the last kept one
        if cfg.fps is not None and t + 1e-6 >= self._next_rate_t:
            return True
        return cfg.keyframes and is_key

    def offer(self, t: float, small: Image, is_key: bool, phash: int) -> Decision:
        """Whether to keep the frame shown at `t` seconds (`small`: at COMPARE_SIZE)."""
        cfg = self.config
        if self.full:
            return Decision(False, dropped="cap")
        reasons = []
        if cfg.fps is not None and t + 1e-6 >= self._next_rate_t:
            reasons.append("rate")
            while self._next_rate_t <= t + 1e-6:  # the clock moves on, kept or not
                self._next_rate_t += 1.0 / cfg.fps
        if cfg.keyframes and is_key:
            reasons.append("keyframe")
        if cfg.scenes and self._changed(small):
            reasons.append("scene")
        if self._last_t is None and cfg.scenes:
            reasons.append("first")  # a scene starts with the video
        if not reasons:
            return Decision(False, dropped="not chosen")
        if self._last_t is not None and "rate" not in reasons and t - self._last_t < cfg.min_gap_s:
            return Decision(False, dropped="too soon")
        if self._last_hash is not None and hamming(phash, self._last_hash) < cfg.dedupe_distance:
            return Decision(False, dropped="near-duplicate")
        self.kept += 1
        self._last_t, self._last_small, self._last_hash = t, small, phash
        return Decision(True, tuple(dict.fromkeys(reasons)))

    def _changed(self, small: Image) -> bool:
        if self._last_small is None:
            return False
        diff = np.abs(small.astype(np.int16) - self._last_small.astype(np.int16))
        return float(diff.mean()) / 255.0 >= self.config.scene_threshold
