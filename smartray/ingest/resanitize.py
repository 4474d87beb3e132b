"""Ray-free parts of `smartray ingest --resanitize`: what to re-read, and one batch of it.

When a detector or setting improves, the stored bytes of assets already in the lake can
be made again from their sources: the same `asset_id` (the sha256 of the source bytes),
new sanitized bytes, thumbnail, metrics and `blurred_boxes`. The driver
(`pipeline.resanitize`) replaces those rows in one upsert of one recorded run, so tables
keyed by `asset_id` stay valid and runs that pinned the old `assets` version still read
the old rows until `maintain` ages them out.

1. `plan`: every recorded source (`asset_sources`) of every image asset under the given
   prefixes becomes an input. Frames and augmented children have no source file of
   their own (a frame comes from its video, a child from its parent); they are counted,
   not re-sanitized.
2. `resanitize_block` (in a Ray task): read each source, hash it; only bytes that still
   hash to an asset to re-sanitize are sanitized again (a source that changed since is
   no longer that asset's source). New rows go to one Parquet part, as in ingest.
3. The driver upserts the parts' rows; assets none of whose sources could be read again
   are listed as gone, with why, and keep their stored rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from smartray.ingest.ops import is_known, new_asset, read_input
from smartray.ingest.outcomes import KNOWN, NEW, BlockResult, Outcome, each_input, finish_block
from smartray.sanitize.config import SanitizeConfig
from smartray.sanitize.cv import pin_threads
from smartray.sanitize.ops import sha256_hex
from smartray.sources.base import Reader, SourceEntry
from smartray.tables.storage import LakeLocation

log = logging.getLogger(__name__)

CHANGED = "changed"  # the source holds other bytes now: it is no longer this asset's source


def _norm(source: str) -> tuple[str, str]:
    """A source argument as a URI prefix, and the root its local files must stay in."""
    if source.startswith("s3://"):
        return source.rstrip("/"), ""
    path = os.path.abspath(os.path.expanduser(source))
    root = os.path.dirname(path) if os.path.isfile(path) else path
    return path.rstrip("/") or "/", os.path.realpath(root)


def plan(
    assets: pa.Table, sources: pa.Table, prefixes: list[str]
) -> tuple[list[SourceEntry], dict[str, list[str]], int]:
    """The inputs to read again, the assets to re-sanitize, and how many are skipped.

    Args:
        assets: `assets` columns `asset_id`, `media_type`.
        sources: `asset_sources` columns `asset_id`, `source_uri`.
        prefixes: Folders, files or `s3://` prefixes; an asset is re-sanitized if one of
            its recorded sources lies under one of them.

    Returns:
        One entry per (asset, source URI); the target asset ids (sorted), each with its
        source URIs; the number of frames and augmented children in the lake (they have
        no source file of their own).
    """
    kinds = dict(zip(assets["asset_id"].to_pylist(), assets["media_type"].to_pylist(), strict=True))
    roots = [_norm(p) for p in prefixes]
    entries: dict[tuple[str, str], SourceEntry] = {}
    targets: dict[str, list[str]] = {}
    for asset_id, uri in zip(
        sources["asset_id"].to_pylist(), sources["source_uri"].to_pylist(), strict=True
    ):
        kind = kinds.get(asset_id)
        if kind != "image" or (asset_id, uri) in entries:
            continue  # a video's row, an erased asset, or a second version of a source
        root = next((r for p, r in roots if uri == p or uri.startswith(p + "/")), None)
        if root is None:
            continue
        targets.setdefault(asset_id, []).append(uri)
        # size -1: read whatever is there now (the listing's size is from an older run)
        entries[(asset_id, uri)] = SourceEntry(uri=uri, size=-1, mtime_ns=None, root=root)
    skipped = sum(k != "image" for k in kinds.values())
    return list(entries.values()), dict(sorted(targets.items())), skipped


def resanitize_block(
    entries: list[SourceEntry],
    *,
    config: SanitizeConfig,
    location: LakeLocation,
    run_id: str,
    known_ids: np.ndarray,
    reader: Reader,
) -> BlockResult:
    """Sanitizes the sources in one block again; returns its part and one outcome each.

    Args:
        entries: Sources (from `plan`).
        config: The sanitize settings to apply now.
        location: The lake; the new rows go to one Parquet part in the `assets` folder,
            which the driver reads back, upserts and deletes.
        run_id: This run; fills `run_id` of the new rows.
        known_ids: `known_id_index` of the asset ids to re-sanitize.
        reader: Reads each source's bytes.

    Returns:
        Outcomes `new` (re-sanitized, in the part), `known` (another source of an asset
        this block already did), `changed` (other bytes now) or `rejected`.
    """
    started = time.time()
    pin_threads()
    assets: list[dict[str, Any]] = []
    done: set[str] = set()
    now = dt.datetime.now(dt.UTC)

    def handle(entry: SourceEntry, out: Outcome) -> None:
        data = read_input(entry, reader, config.max_bytes)
        out.asset_id = asset_id = sha256_hex(data)
        if not is_known(known_ids, asset_id):
            out.status, out.detail = CHANGED, "the source holds other bytes now"
            return
        if asset_id in done:
            out.status = KNOWN
            return
        assets.append(new_asset(out, data, entry, config, run_id=run_id, now=now))
        done.add(asset_id)

    outcomes = each_input(entries, handle, what="re-sanitizing")
    return finish_block(started, outcomes, location, assets, prefix=f"{run_id}-resanitize")


def gone(
    targets: dict[str, list[str]], results: Iterable[BlockResult], crashes: dict[str, str]
) -> list[str]:
    """One line per target asset not re-sanitized: its id, and each source with why."""
    outcomes = [o for r in results for o in r.outcomes]
    done = {o.asset_id for o in outcomes if o.status in (NEW, KNOWN)}
    why = {o.uri: o.detail or o.reason or o.status for o in outcomes} | crashes
    return [
        f"{asset_id}: " + "; ".join(f"{u} ({why.get(u, 'not read')})" for u in uris)
        for asset_id, uris in targets.items()
        if asset_id not in done
    ]
