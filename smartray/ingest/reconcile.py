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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from smartray.ingest.outcomes import KNOWN, NEW, REJECTED, BlockResult, Outcome, VideoOutcome
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
    images: Sequence[BlockResult],
    videos: Sequence[BlockResult] = (),
    *,
    run_id: str,
    unchanged: frozenset[str] = frozenset(),
    crashes: Mapping[str, str] | None = None,
) -> Reconciled:
    """Matches worker results to the listing and builds the rows to commit.

    Args:
        listing: What was listed (entries, and inputs refused while listing).
        images: What the image tasks returned.
        videos: What the video tasks returned (their outcomes are `VideoOutcome`s).
        run_id: The run.
        unchanged: URIs skipped unread because an earlier run saw them unchanged.
        crashes: URI to what killed its worker, for inputs no worker reported on.
    """
    now = dt.datetime.now(dt.UTC)
    by_uri: dict[str, Outcome] = {}
    part_of: dict[str, PartFile] = {}  # the part each new input's rows are in
    for result in (*images, *videos):
        for done in result.outcomes:
            if done.uri not in by_uri:  # an input reported twice counts once
                by_uri[done.uri] = done
                adds_rows = not isinstance(done, VideoOutcome) or done.frames > 0
                if done.status == NEW and adds_rows and result.part is not None:
                    part_of[done.uri] = result.part
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
    video_rows: dict[str, dict[str, Any]] = {}
    new_videos: set[str] = set()
    for entry in listing.entries:
        if entry.uri in unchanged:
            skipped += 1
            continue
        o = by_uri.get(entry.uri)
        if o is None:
            crashed += 1
            why = (crashes or {}).get(entry.uri, "no worker reported on this input")
            refuse(entry.uri, str(Reason.WORKER_CRASH), why, entry, None)
            continue
        if o.status == REJECTED:
            refuse(entry.uri, o.reason or "", o.detail or "", entry, o.asset_id)
            continue
        is_video = isinstance(o, VideoOutcome)
        if isinstance(o, VideoOutcome):  # (a second test, for the type checker)
            video_inputs += 1
            if o.video_row is not None and o.asset_id is not None:
                video_rows.setdefault(o.asset_id, o.video_row)
        if o.status == NEW:
            if is_video:
                new_videos.add(o.asset_id or "")
            else:
                new += 1
            target = frame_parts if is_video else parts
            part = part_of.get(entry.uri)
            if part is not None:
                target.setdefault(part.path, part)
        elif o.status == KNOWN and not is_video:
            known += 1
        sources.append(
            {
                "asset_id": o.asset_id,
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
        videos=VIDEOS.cast([{**v, "ingested_at": now} for v in video_rows.values()]),
        sources=ASSET_SOURCES.cast(sources),
        quarantine=QUARANTINE.cast(quarantine),
        counts=counts,
    )
