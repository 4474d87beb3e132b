"""Ray-free ingest of videos: one block of listed video inputs in, a `BlockResult` out.

The video half of `ingest/ops.py` (the same outcomes and error policy, `VideoOutcome`
adding the frames); `smartray.video` only decodes and samples.

For each video: read its bytes (under `VideoSettings.max_bytes`), hash them (`video_id`),
decode and sample in a child process (`isolated.sample_isolated`), and sanitize each
kept frame like an image (`sanitize_pixels`: metrics, hashes, blur, re-encode,
thumbnail). New frames go to one Parquet part of `assets`; a new video's stream facts
come back in its outcome (`video_row`) for the driver to commit to `videos`.

A frame's `asset_id` is the sha256 of `"{video_id}:{frame_index}"`, so a video ingested
again adds no frame, and one sampled with other flags adds only the frames not yet there.
Only pixels and stream facts are kept: container metadata never reaches the lake.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
import tempfile
import time
from typing import Any

import numpy as np

from smartray.ingest.ops import is_known, read_input
from smartray.ingest.outcomes import KNOWN, NEW, BlockResult, VideoOutcome, each_input, finish_block
from smartray.sanitize.config import SanitizeConfig
from smartray.sanitize.cv import pin_threads
from smartray.sanitize.ops import sanitize_pixels, sha256_hex
from smartray.sources.base import Reader, SourceEntry
from smartray.tables.storage import LakeLocation
from smartray.types import RejectedInput
from smartray.video.config import VideoSettings
from smartray.video.decode import SampledFrame
from smartray.video.isolated import sample_isolated

log = logging.getLogger(__name__)

# File name endings taken for videos; the decoder confirms each (a `.mp4` that is not a
# video ends in quarantine as `corrupt`).
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts",
     ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"}
)  # fmt: skip


def is_video(uri: str) -> bool:
    """Whether an input is taken for a video (by its name's extension)."""
    return os.path.splitext(uri)[1].lower() in VIDEO_EXTENSIONS


def frame_asset_id(video_id: str, frame_index: int) -> str:
    """The asset id of a video's frame (DESIGN.md)."""
    return hashlib.sha256(f"{video_id}:{frame_index}".encode()).hexdigest()


def ingest_video_block(
    entries: list[SourceEntry],
    *,
    config: SanitizeConfig,
    video: VideoSettings,
    location: LakeLocation,
    run_id: str,
    known_ids: np.ndarray,
    known_videos: np.ndarray,
    reader: Reader,
) -> BlockResult:
    """Ingests one block of listed videos; returns its part and one `VideoOutcome` each.

    Args:
        entries: The block's videos.
        config: Sanitize settings for the frames (`max_pixels` caps the frame size).
        video: Byte limit, sampling and time limit of the videos.
        location: The lake the new frames' part is written to.
        run_id: This run.
        known_ids: `known_id_index` of the `assets` ids (frames already there).
        known_videos: `known_id_index` of the `videos` ids.
        reader: Reads each input's bytes.
    """
    started = time.time()
    pin_threads()
    frames: list[dict[str, Any]] = []
    now = dt.datetime.now(dt.UTC)

    def handle(entry: SourceEntry, out: VideoOutcome) -> None:
        data = read_input(entry, reader, video.max_bytes)
        out.asset_id = video_id = sha256_hex(data)
        new_frames, info = _video_frames(data, video_id, config, video, known_ids)
        new_video = not is_known(known_videos, video_id)
        out.status = NEW if new_frames or new_video else KNOWN
        out.frames = len(new_frames)
        out.blurred_regions = sum(f["blurred_regions"] for f in new_frames)
        out.blurred_assets = sum(f["blurred_regions"] > 0 for f in new_frames)
        if new_video:
            facts = {**info, "source_uri": entry.uri, "source_bytes": len(data), "run_id": run_id}
            out.video_row = {"video_id": video_id, **facts}
        for f in new_frames:
            frames.append({**f, "source_bytes": len(data), "run_id": run_id, "ingested_at": now})

    outcomes = each_input(entries, handle, VideoOutcome, "ingesting video")
    return finish_block(started, outcomes, location, frames, prefix=run_id)


def _video_frames(
    data: bytes,
    video_id: str,
    config: SanitizeConfig,
    video: VideoSettings,
    known_ids: np.ndarray,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The `assets` rows of the video's newly chosen frames, and its stream facts."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()

    def take(frame: SampledFrame) -> None:
        asset_id = frame_asset_id(video_id, frame.frame_index)
        if asset_id in seen or is_known(known_ids, asset_id):
            return
        seen.add(asset_id)
        rows.append(
            {
                "asset_id": asset_id,
                "media_type": "frame",
                "orientation": 1,
                "captured_at": None,
                "video_id": video_id,
                "frame_index": frame.frame_index,
                "timestamp_ms": frame.timestamp_ms,
                **sanitize_pixels(frame.image, config=config, lossless=False),
            }
        )

    with tempfile.NamedTemporaryFile(prefix="smartray-video-") as f:
        f.write(data)
        f.flush()
        try:
            result = sample_isolated(
                f.name, video.sampling, config.max_pixels, take,
                timeout_s=video.timeout_s, child_module=video.decoder_module,
            )  # fmt: skip
        except RejectedInput as e:  # FFmpeg's messages name the file: not our temp copy
            raise RejectedInput(e.reason, e.detail.replace(f.name, "the video")) from None
    for row in rows:
        row["source_format"] = result.info.codec
    return rows, dataclasses.asdict(result.info)
