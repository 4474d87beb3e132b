"""Ray-free ingest of videos: one batch of listed video inputs in, result rows out.

The video half of `ingest/ops.py` (same input and result rows); `smartray.video` only
decodes and samples.

For each video: read its bytes (under `VideoSettings.max_bytes`), hash them (`video_id`),
decode and sample in a child process (`isolated.sample_isolated`), and sanitize each
kept frame like an image (`sanitize_pixels`: metrics, hashes, blur, re-encode,
thumbnail). New frames go to one Parquet part of `assets`; a new video's stream facts
come back in the result row (`video_row`, JSON) for the driver to commit to `videos`.

A frame's `asset_id` is the sha256 of `"{video_id}:{frame_index}"`, so a video ingested
again adds no frame, and one sampled with other flags adds only the frames not yet there.
Only pixels and stream facts are kept: container metadata never reaches the lake.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from typing import Any

import numpy as np
import pyarrow as pa

from smartray.errors import SmartrayError
from smartray.ingest.ops import (
    KNOWN,
    NEW,
    REJECTED,
    RESULT_SCHEMA,
    is_known,
    read_input,
)
from smartray.sanitize.config import SanitizeConfig
from smartray.sanitize.cv import pin_threads
from smartray.sanitize.ops import sanitize_pixels, sha256_hex
from smartray.sources.base import Reader, SourceEntry
from smartray.tables.catalog import ASSETS
from smartray.tables.parts import write_part
from smartray.tables.storage import LakeLocation
from smartray.types import Reason, RejectedInput
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


def ingest_video_batch(
    batch: pa.Table,
    *,
    config: SanitizeConfig,
    video: VideoSettings,
    location: LakeLocation,
    run_id: str,
    known_ids: np.ndarray,
    known_videos: np.ndarray,
    reader: Reader,
) -> pa.Table:
    """Ingests one batch of listed videos; returns one result row per video.

    Args:
        batch: Rows of `INPUT_SCHEMA`.
        config: Sanitize settings for the frames (`max_pixels` caps the frame size).
        video: Byte limit, sampling and time limit of the videos.
        location: The lake the new frames' part is written to.
        run_id: This run.
        known_ids: `known_id_index` of the `assets` ids (frames already there).
        known_videos: `known_id_index` of the `videos` ids.
        reader: Reads each input's bytes.
    """
    pin_threads()
    results: list[dict[str, Any]] = []
    frames: list[dict[str, Any]] = []
    now = dt.datetime.now(dt.UTC)
    for row in batch.to_pylist():
        out = {**row, "asset_id": None, "status": REJECTED, "reason": None, "detail": None}
        results.append(out)
        try:
            entry = SourceEntry(**{**row, "root": row["root"] or ""})
            data = read_input(entry, reader, video.max_bytes)
            out["asset_id"] = video_id = sha256_hex(data)
            new_frames, info = _video_frames(data, video_id, config, video, known_ids)
        except RejectedInput as r:
            out["reason"], out["detail"] = str(r.reason), r.detail
            continue
        except SmartrayError:
            raise  # a configuration problem, not the input's
        except Exception as e:  # a bug must cost one input, not the batch
            log.warning("unexpected error ingesting video %s: %r", row["uri"], e)
            out["reason"], out["detail"] = str(Reason.INTERNAL_ERROR), f"{type(e).__name__}: {e}"
            continue
        new_video = not is_known(known_videos, video_id)
        out["status"] = NEW if new_frames or new_video else KNOWN
        out["frames"] = len(new_frames)
        out["blurred_regions"] = sum(f["blurred_regions"] for f in new_frames)
        out["blurred_assets"] = sum(f["blurred_regions"] > 0 for f in new_frames)
        if new_video:
            facts = {**info, "source_uri": row["uri"], "source_bytes": len(data), "run_id": run_id}
            out["video_row"] = json.dumps({"video_id": video_id, **facts})
        for f in new_frames:
            frames.append({**f, "source_bytes": len(data), "run_id": run_id, "ingested_at": now})
    if frames:
        part = write_part(location, ASSETS, frames, prefix=run_id)
        for out in results:
            if out.get("frames"):
                out["part_path"], out["part_size"] = part.path, part.size
                out["part_rows"], out["part_stats"] = part.num_records, part.stats
    return pa.Table.from_pylist(results, schema=RESULT_SCHEMA)


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
