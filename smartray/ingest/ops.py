"""Ray-free ingest operators: one batch of listed inputs in, result rows out.

A batch reads each input, hashes it, skips bytes the lake already has, sanitizes the
rest, and writes the new `assets` rows as one Parquet part into the table folder (not
committed: the driver does that once, for all parts). Each input comes back as exactly
one result row: `new`, `known` (its bytes are already an asset) or `rejected`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

import numpy as np
import pyarrow as pa

from smartray.errors import SmartrayError
from smartray.sanitize.config import SanitizeConfig
from smartray.sanitize.cv import pin_threads
from smartray.sanitize.ops import sanitize_image, sha256_hex
from smartray.sources.base import Reader, SourceEntry
from smartray.tables.catalog import ASSETS
from smartray.tables.parts import write_part
from smartray.tables.storage import LakeLocation
from smartray.types import Reason, RejectedInput

log = logging.getLogger(__name__)

NEW, KNOWN, REJECTED = "new", "known", "rejected"

INPUT_SCHEMA = pa.schema(
    [
        pa.field("uri", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("etag", pa.string()),
        pa.field("root", pa.string()),
    ]
)

RESULT_SCHEMA = pa.schema(
    [
        *INPUT_SCHEMA,
        pa.field("asset_id", pa.string()),
        pa.field("status", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("part_path", pa.string()),
        pa.field("part_size", pa.int64()),
        pa.field("part_rows", pa.int64()),
        pa.field("part_stats", pa.string()),
        # videos only: new frame rows in the part, and the `videos` row of a new video
        pa.field("frames", pa.int64()),
        pa.field("video_row", pa.string()),
        # new assets only: regions blurred, and assets with one or more (frames: summed)
        pa.field("blurred_regions", pa.int64()),
        pa.field("blurred_assets", pa.int64()),
    ]
)


def entries_to_rows(entries: list[SourceEntry]) -> list[dict[str, Any]]:
    """Listed entries as rows of `INPUT_SCHEMA` (what the Ray dataset is built from)."""
    return [
        {"uri": e.uri, "size": e.size, "mtime_ns": e.mtime_ns, "etag": e.etag, "root": e.root}
        for e in entries
    ]


def known_id_index(ids: pa.Array) -> np.ndarray:
    """A sorted array of asset ids for `is_known` (zero-copy in Ray's object store)."""
    return np.sort(np.asarray(ids.to_pylist(), dtype="S64"))


def is_known(index: np.ndarray, asset_id: str) -> bool:
    """True if `asset_id` is in the sorted `index` (binary search)."""
    key = asset_id.encode("ascii")
    i = int(np.searchsorted(index, key))
    return i < len(index) and bytes(index[i]) == key


def ingest_batch(
    batch: pa.Table,
    *,
    config: SanitizeConfig,
    location: LakeLocation,
    run_id: str,
    known_ids: np.ndarray,
    reader: Reader,
) -> pa.Table:
    """Ingests one batch of listed inputs; returns one result row per input.

    Inputs are handled one at a time, so a batch holds one source file in memory at once.

    Args:
        batch: Rows of `INPUT_SCHEMA`.
        config: Limits and sanitize settings.
        location: The lake the new assets' part is written to.
        run_id: This run; names the part file and fills `run_id`.
        known_ids: `known_id_index` of the asset ids in the table at the pinned version.
        reader: Reads each input's bytes.
    """
    pin_threads()
    results: list[dict[str, Any]] = []
    assets: list[dict[str, Any]] = []
    batch_ids: set[str] = set()
    now = dt.datetime.now(dt.UTC)
    for row in batch.to_pylist():
        out = {**row, "asset_id": None, "status": REJECTED, "reason": None, "detail": None}
        results.append(out)
        try:
            data = read_input(
                SourceEntry(**{**row, "root": row["root"] or ""}), reader, config.max_bytes
            )
            out["asset_id"] = asset_id = sha256_hex(data)
            if asset_id in batch_ids or is_known(known_ids, asset_id):
                out["status"] = KNOWN
                continue
            asset = sanitize_image(data, config=config, name=os.path.basename(row["uri"]))
        except RejectedInput as r:
            out["reason"], out["detail"] = str(r.reason), r.detail
            continue
        except SmartrayError:
            raise  # a configuration problem (a detector that does not load): not the input's
        except Exception as e:  # a decoder bug must cost one input, not the batch
            log.warning("unexpected error ingesting %s: %r", row["uri"], e)
            out["reason"], out["detail"] = str(Reason.INTERNAL_ERROR), f"{type(e).__name__}: {e}"
            continue
        out["status"] = NEW
        out["blurred_regions"] = regions = asset["blurred_regions"]
        out["blurred_assets"] = int(regions > 0)
        batch_ids.add(asset_id)
        assets.append({"asset_id": asset_id, **asset, "run_id": run_id, "ingested_at": now})
    if assets:
        part = write_part(location, ASSETS, assets, prefix=run_id)
        for out in results:
            if out["status"] == NEW:
                out["part_path"], out["part_size"] = part.path, part.size
                out["part_rows"], out["part_stats"] = part.num_records, part.stats
    return pa.Table.from_pylist(results, schema=RESULT_SCHEMA)


def blur_counts(results: pa.Table) -> dict[str, int]:
    """`blurred_regions` and `blurred_assets` of a run's new assets (first row per id)."""
    regions = assets = 0
    seen: set[str] = set()
    for r in results.select(
        ["asset_id", "status", "blurred_regions", "blurred_assets"]
    ).to_pylist():
        if r["status"] == NEW and r["asset_id"] not in seen:
            seen.add(r["asset_id"])
            regions += r["blurred_regions"] or 0
            assets += r["blurred_assets"] or 0
    return {"blurred_regions": regions, "blurred_assets": assets}


def read_input(entry: SourceEntry, reader: Reader, max_bytes: int) -> bytes:
    """An input's bytes; `empty` or `too_large` (unread if the listing says so) refused."""
    if entry.size == 0:
        raise RejectedInput(Reason.EMPTY, "zero bytes")
    if entry.size > max_bytes:
        raise RejectedInput(Reason.TOO_LARGE, f"{entry.size:,} bytes; limit {max_bytes:,}")
    data = reader.read(entry, max_bytes)
    if not data:
        raise RejectedInput(Reason.EMPTY, "zero bytes")
    if len(data) > max_bytes:
        raise RejectedInput(Reason.TOO_LARGE, f"{len(data):,} bytes; limit {max_bytes:,}")
    return data
