"""The driver's reconciliation: every listed input ends as exactly one outcome.

An input is a new asset, a duplicate of an asset (new or already present) or a
`quarantine` row. An input no worker reported on (its worker died) is quarantined as
`worker_crash`, so nothing silently disappears.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from smartray.ingest.ops import KNOWN, NEW, REJECTED, RESULT_SCHEMA
from smartray.sources.base import Listing
from smartray.tables.catalog import ASSET_SOURCES, QUARANTINE
from smartray.tables.parts import PartFile
from smartray.types import Reason


@dataclass
class Reconciled:
    """What the driver commits, and the counts for the summary."""

    parts: list[PartFile]
    sources: pa.Table
    quarantine: pa.Table
    counts: dict[str, int] = field(default_factory=dict)


def quarantine_id(uri: str, reason: str, fingerprint: str) -> str:
    """Id of a quarantine row: an unchanged bad input refused again is the same row."""
    return hashlib.sha256(f"{uri}\x00{reason}\x00{fingerprint}".encode()).hexdigest()


def _utc_from_ns(ns: int | None) -> dt.datetime | None:
    return None if ns is None else dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


def reconcile(listing: Listing, results: pa.Table, *, run_id: str) -> Reconciled:
    """Matches worker results to the listing and builds the rows to commit.

    Args:
        listing: What was listed (entries sent to workers, and inputs refused at listing).
        results: Worker result rows (`RESULT_SCHEMA`), at most one per entry.
        run_id: The run.
    """
    now = dt.datetime.now(dt.UTC)
    by_uri: dict[str, dict[str, Any]] = {}
    for row in results.select(RESULT_SCHEMA.names).to_pylist():
        by_uri.setdefault(row["uri"], row)  # a retried task may report an input twice
    quarantine: list[dict[str, Any]] = []

    def refuse(
        uri: str, reason: str, detail: str, size: int | None, mtime_ns: int | None, sha: str | None
    ) -> None:
        fingerprint = sha or f"{size}:{mtime_ns}"
        quarantine.append(
            {
                "quarantine_id": quarantine_id(uri, reason, fingerprint),
                "source_uri": uri,
                "reason": reason,
                "detail": detail,
                "size": size,
                "mtime": _utc_from_ns(mtime_ns),
                "source_sha256": sha,
                "run_id": run_id,
                "quarantined_at": now,
            }
        )

    for rej in listing.rejections:
        refuse(rej.uri, str(rej.reason), rej.detail, None, None, None)
    sources: list[dict[str, Any]] = []
    parts: dict[str, PartFile] = {}
    new = known = crashed = 0
    for entry in listing.entries:
        row = by_uri.get(entry.uri)
        if row is None:
            crashed += 1
            refuse(
                entry.uri,
                str(Reason.WORKER_CRASH),
                "no worker reported on this input",
                entry.size,
                entry.mtime_ns,
                None,
            )
            continue
        if row["status"] == REJECTED:
            refuse(
                entry.uri,
                row["reason"],
                row["detail"] or "",
                row["size"],
                row["mtime_ns"],
                row["asset_id"],
            )
            continue
        if row["status"] == NEW:
            new += 1
            if row["part_path"] not in parts:
                parts[row["part_path"]] = PartFile(
                    row["part_path"], row["part_size"], row["part_rows"], row["part_stats"]
                )
        elif row["status"] == KNOWN:
            known += 1
        sources.append(
            {
                "asset_id": row["asset_id"],
                "source_uri": entry.uri,
                "size": row["size"],
                "mtime": _utc_from_ns(row["mtime_ns"]),
                "etag": row["etag"],
                "run_id": run_id,
                "recorded_at": now,
            }
        )
    counts = {
        "listed": listing.count,
        "candidates": new,
        "known": known,
        "quarantined": len(quarantine),
        "worker_crash": crashed,
    }
    return Reconciled(
        parts=list(parts.values()),
        sources=ASSET_SOURCES.cast(sources),
        quarantine=QUARANTINE.cast(quarantine),
        counts=counts,
    )
