"""Ray-free ingest operators: one block of listed inputs in, a `BlockResult` out.

A block reads each input, hashes it, skips bytes the lake already has, sanitizes the
rest, and writes the new `assets` rows as one Parquet part into the table folder (not
committed: the driver does that once, for all parts). Each input comes back as exactly
one `Outcome`: `new`, `known` (its bytes are already an asset) or `rejected`.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import numpy as np
import pyarrow as pa

from smartray.ingest.outcomes import KNOWN, NEW, BlockResult, Outcome, each_input, finish_block
from smartray.sanitize.config import SanitizeConfig
from smartray.sanitize.cv import pin_threads
from smartray.sanitize.ops import sanitize_image, sha256_hex
from smartray.sources.base import Reader, SourceEntry
from smartray.tables.storage import LakeLocation
from smartray.types import Reason, RejectedInput


def known_id_index(ids: pa.Array) -> np.ndarray:
    """A sorted array of asset ids for `is_known` (zero-copy in Ray's object store)."""
    return np.sort(np.asarray(ids.to_pylist(), dtype="S64"))


def is_known(index: np.ndarray, asset_id: str) -> bool:
    """True if `asset_id` is in the sorted `index` (binary search)."""
    if not len(index):
        return False
    key = asset_id.encode("ascii")
    i = int(np.searchsorted(index, key))
    return i < len(index) and bytes(index[i]) == key


def ingest_block(
    entries: list[SourceEntry],
    *,
    config: SanitizeConfig,
    location: LakeLocation,
    run_id: str,
    known_ids: np.ndarray,
    reader: Reader,
) -> BlockResult:
    """Ingests one block of listed inputs; returns its part and one outcome per input.

    Inputs are handled one at a time: the block holds one source file in memory at once,
    and the re-encoded assets until its part is written.

    Args:
        entries: The block's inputs.
        config: Limits and sanitize settings.
        location: The lake the new assets' part is written to.
        run_id: This run; names the part file and fills `run_id`.
        known_ids: `known_id_index` of the asset ids in the table at the pinned version.
        reader: Reads each input's bytes.
    """
    started = time.time()
    pin_threads()
    assets: list[dict[str, Any]] = []
    batch_ids: set[str] = set()
    now = dt.datetime.now(dt.UTC)

    def handle(entry: SourceEntry, out: Outcome) -> None:
        data = read_input(entry, reader, config.max_bytes)
        out.asset_id = asset_id = sha256_hex(data)
        if asset_id in batch_ids or is_known(known_ids, asset_id):
            out.status = KNOWN
            return
        assets.append(new_asset(out, data, entry, config, run_id=run_id, now=now))
        batch_ids.add(asset_id)

    outcomes = each_input(entries, handle)
    return finish_block(started, outcomes, location, assets, prefix=run_id)


def new_asset(
    out: Outcome,
    data: bytes,
    entry: SourceEntry,
    config: SanitizeConfig,
    *,
    run_id: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """Sanitizes an input's bytes into its `assets` row; marks its outcome `new`."""
    asset = sanitize_image(data, config=config, name=os.path.basename(entry.uri))
    out.status = NEW
    out.blurred_regions = regions = asset["blurred_regions"]
    out.blurred_assets = int(regions > 0)
    asset.update(asset_id=out.asset_id, run_id=run_id, ingested_at=now)
    return asset


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
