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
2. `resanitize_batch` (in a Ray task): read each source, hash it; only bytes that still
   hash to an asset to re-sanitize are sanitized again (a source that changed since is
   no longer that asset's source). New rows go to one Parquet part, as in ingest.
3. The driver upserts the parts' rows; assets none of whose sources could be read again
   are listed as gone, with why, and keep their stored rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

import numpy as np
import pyarrow as pa

from smartray.errors import SmartrayError
from smartray.ingest.ops import KNOWN, NEW, REJECTED, RESULT_SCHEMA, is_known, read_input
from smartray.sanitize.config import SanitizeConfig
from smartray.sanitize.cv import pin_threads
from smartray.sanitize.ops import sanitize_image, sha256_hex
from smartray.sources.base import Reader, SourceEntry
from smartray.tables.catalog import ASSETS
from smartray.tables.parts import write_part
from smartray.tables.storage import LakeLocation
from smartray.types import Reason, RejectedInput

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


def resanitize_batch(
    batch: pa.Table,
    *,
    config: SanitizeConfig,
    location: LakeLocation,
    run_id: str,
    known_ids: np.ndarray,
    reader: Reader,
) -> pa.Table:
    """Sanitizes the sources in one batch again; returns one result row per source.

    Args:
        batch: Rows of `INPUT_SCHEMA` (from `plan`).
        config: The sanitize settings to apply now.
        location: The lake; the new rows go to one Parquet part in the `assets` folder,
            which the driver reads back, upserts and deletes.
        run_id: This run; fills `run_id` of the new rows.
        known_ids: `known_id_index` of the asset ids to re-sanitize.
        reader: Reads each source's bytes.

    Returns:
        `RESULT_SCHEMA` rows: `new` (re-sanitized, in the part), `known` (another source
        of an asset this batch already did), `changed` (other bytes now) or `rejected`.
    """
    pin_threads()
    results: list[dict[str, Any]] = []
    assets: list[dict[str, Any]] = []
    done: set[str] = set()
    now = dt.datetime.now(dt.UTC)
    for row in batch.to_pylist():
        out = {**row, "asset_id": None, "status": REJECTED, "reason": None, "detail": None}
        results.append(out)
        try:
            data = read_input(
                SourceEntry(**{**row, "root": row["root"] or ""}),
                reader,
                config.max_bytes,
            )
            out["asset_id"] = asset_id = sha256_hex(data)
            if not is_known(known_ids, asset_id):
                out["status"], out["detail"] = CHANGED, "the source holds other bytes now"
                continue
            if asset_id in done:
                out["status"] = KNOWN
                continue
            asset = sanitize_image(data, config=config, name=os.path.basename(row["uri"]))
        except RejectedInput as r:
            out["reason"], out["detail"] = str(r.reason), r.detail
            continue
        except SmartrayError:
            raise
        except Exception as e:  # a decoder bug must cost one input, not the batch
            log.warning("unexpected error re-sanitizing %s: %r", row["uri"], e)
            out["reason"], out["detail"] = str(Reason.INTERNAL_ERROR), f"{type(e).__name__}: {e}"
            continue
        out["status"] = NEW
        out["blurred_regions"] = regions = asset["blurred_regions"]
        out["blurred_assets"] = int(regions > 0)
        done.add(asset_id)
        assets.append({"asset_id": asset_id, **asset, "run_id": run_id, "ingested_at": now})
    if assets:
        part = write_part(location, ASSETS, assets, prefix=f"{run_id}-resanitize")
        for out in results:
            if out["status"] == NEW:
                out["part_path"], out["part_size"] = part.path, part.size
                out["part_rows"], out["part_stats"] = part.num_records, part.stats
    return pa.Table.from_pylist(results, schema=RESULT_SCHEMA)


def gone(targets: dict[str, list[str]], results: pa.Table, crashes: dict[str, str]) -> list[str]:
    """One line per target asset not re-sanitized: its id, and each source with why."""
    rows = results.select(["uri", "asset_id", "status", "reason", "detail"]).to_pylist()
    done = {r["asset_id"] for r in rows if r["status"] in (NEW, KNOWN)}
    why = {r["uri"]: r["detail"] or r["reason"] or r["status"] for r in rows} | crashes
    return [
        f"{asset_id}: " + "; ".join(f"{u} ({why.get(u, 'not read')})" for u in uris)
        for asset_id, uris in targets.items()
        if asset_id not in done
    ]
