"""The driver's reconciliation: every listed input ends as exactly one outcome.

An input is a new asset, a duplicate of an asset (new or already present), unchanged
since an earlier run (skipped unread), or a `quarantine` row. An input no worker
reported on (its worker kept dying) is quarantined as `worker_crash`, so nothing silently
disappears. A video input is new (it added frames, or its `videos` row), known (nothing
new was chosen from it), or a `quarantine` row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from smartray.ingest.ops import KNOWN, NEW, REJECTED, RESULT_SCHEMA
from smartray.sources.base import Listing, SourceEntry
from smartray.tables.catalog import ASSET_SOURCES, QUARANTINE, VIDEOS
from smartray.tables.parts import PartFile
from smartray.types import Reason


@dataclass
class Reconciled:
    """What the driver commits, and the counts for the summary."""

    parts: list[PartFile]  # new image assets
    frame_parts: list[PartFile]  # new video frames (assets too)
    videos: pa.Table  # new `videos` rows
    sources: pa.Table
    quarantine: pa.Table
    counts: dict[str, int] = field(default_factory=dict)


def quarantine_id(uri: str, reason: str, fingerprint: str) -> str:
    """Id of a quarantine row: an unchanged bad input refused again is the same row."""
    return hashlib.sha256(f"{uri}\x00{reason}\x00{fingerprint}".encode()).hexdigest()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _utc_from_ns(ns: int | None) -> dt.datetime | None:
    """Exact to the microsecond (a float division is not), as incremental runs compare."""
    return None if ns is None else _EPOCH + dt.timedelta(microseconds=ns // 1000)


def reconcile(
    listing: Listing,
    results: pa.Table,
    *,
    run_id: str,
    unchanged: frozenset[str] = frozenset(),
    crashes: Mapping[str, str] | None = None,
) -> Reconciled:
    """Matches worker results to the listing and builds the rows to commit.

    Args:
        listing: What was listed (entries, and inputs refused while listing).
        results: Worker result rows (`RESULT_SCHEMA`), at most one per entry counts.
        run_id: The run.
        unchanged: URIs skipped unread because an earlier run saw them unchanged.
        crashes: URI to what killed its worker, for inputs no worker reported on.
    """
    now = dt.datetime.now(dt.UTC)
    by_uri: dict[str, dict[str, Any]] = {}
    for row in results.select(RESULT_SCHEMA.names).to_pylist():
        by_uri.setdefault(row["uri"], row)  # a retried task may report an input twice
    quarantine: list[dict[str, Any]] = []

    def refuse(
        uri: str, reason: str, detail: str, entry: SourceEntry | None, sha: str | None
    ) -> None:
        size = entry.size if entry else None
        mtime_ns = entry.mtime_ns if entry else None
        etag = entry.etag if entry else None
        # The same bad bytes seen again unchanged are the same row; a touched or
        # rewritten file is a new observation (and keeps incremental runs from re-reading).
        fingerprint = f"{sha or ''}:{size}:{etag or mtime_ns}"
        quarantine.append(
            {
                "quarantine_id": quarantine_id(uri, reason, fingerprint),
                "source_uri": uri,
                "reason": reason,
                "detail": detail,
                "size": size,
                "mtime": _utc_from_ns(mtime_ns),
                "etag": etag,
                "source_sha256": sha,
                "run_id": run_id,
                "quarantined_at": now,
                "stage": "ingest",
            }
        )

    for rej in listing.rejections:
        refuse(rej.uri, str(rej.reason), rej.detail, None, None)
    sources: list[dict[str, Any]] = []
    parts: dict[str, PartFile] = {}
    new = known = crashed = skipped = video_inputs = 0
    frame_parts: dict[str, PartFile] = {}
    videos: dict[str, dict[str, Any]] = {}
    new_videos: set[str] = set()
    for entry in listing.entries:
        if entry.uri in unchanged:
            skipped += 1
            continue
        row = by_uri.get(entry.uri)
        if row is None:
            crashed += 1
            why = (crashes or {}).get(entry.uri, "no worker reported on this input")
            refuse(entry.uri, str(Reason.WORKER_CRASH), why, entry, None)
            continue
        if row["status"] == REJECTED:
            refuse(entry.uri, row["reason"], row["detail"] or "", entry, row["asset_id"])
            continue
        is_video = row["frames"] is not None
        if is_video:
            video_inputs += 1
            if row["video_row"] is not None:
                videos.setdefault(row["asset_id"], json.loads(row["video_row"]))
        if row["status"] == NEW:
            if is_video:
                new_videos.add(row["asset_id"])
            else:
                new += 1
            target = frame_parts if is_video else parts
            if row["part_path"] is not None and row["part_path"] not in target:
                target[row["part_path"]] = PartFile(
                    row["part_path"], row["part_size"], row["part_rows"], row["part_stats"]
                )
        elif row["status"] == KNOWN and not is_video:
            known += 1
        sources.append(
            {
                "asset_id": row["asset_id"],
                "source_uri": entry.uri,
                "size": entry.size,
                "mtime": _utc_from_ns(entry.mtime_ns),
                "etag": entry.etag,
                "run_id": run_id,
                "recorded_at": now,
            }
        )
    counts = {
        "listed": listing.count,
        "unchanged": skipped,
        "candidates": new,
        "known": known,
        "videos": video_inputs,  # video inputs decoded (new or not)
        "videos_new": len(new_videos),  # distinct videos that added frames or their row
        "quarantined": len(quarantine),
        "worker_crash": crashed,
    }
    return Reconciled(
        parts=list(parts.values()),
        frame_parts=list(frame_parts.values()),
        videos=VIDEOS.cast([{**v, "ingested_at": now} for v in videos.values()]),
        sources=ASSET_SOURCES.cast(sources),
        quarantine=QUARANTINE.cast(quarantine),
        counts=counts,
    )
