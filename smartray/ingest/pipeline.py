"""The ingest job on Ray Data: list, read + sanitize + write parts, reconcile, commit.

Layout (PERFORMANCE.md): the listing becomes a small dataset of paths; one fused
`map_batches(batch_size=None)` task per block reads its files itself, sanitizes them and
writes its new assets as one Parquet part, so image bytes never cross the object store.
The driver then reconciles and commits each table once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import ray

from smartray.cluster.local import ensure_ray
from smartray.ingest.config import IngestConfig
from smartray.ingest.ops import RESULT_SCHEMA, entries_to_rows, ingest_batch, known_id_index
from smartray.ingest.reconcile import reconcile
from smartray.sanitize.cv import DEFAULT_MAX_PIXELS
from smartray.sources.base import Listing, Reader
from smartray.sources.local import LocalReader, list_local
from smartray.tables.catalog import ASSET_SOURCES, ASSETS, QUARANTINE, RUNS
from smartray.tables.commit import commit_parts, commit_rows, ensure_table, existing_keys
from smartray.tables.runs import Run
from smartray.tables.storage import LakeLocation

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    """What an ingest run did; `line()` is the job's one summary line."""

    run_id: str
    counts: dict[str, int]
    versions: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """listed, ingested, duplicates, quarantined, and table versions."""
        c = self.counts
        versions = ", ".join(f"{k} v{v}" for k, v in sorted(self.versions.items()))
        return (
            f"ingest {self.run_id}: listed {c['listed']}, ingested {c['ingested']}, "
            f"duplicates {c['duplicates']}, quarantined {c['quarantined']} "
            f"({c['quarantine_new']} new rows); tables: {versions}"
        )


def ingest(
    config: IngestConfig, *, reader: Reader | None = None, ray_address: str | None = None
) -> IngestSummary:
    """Ingests images from local folders into the lake, exactly once.

    Args:
        config: Sources, lake and settings.
        reader: Reads inputs' bytes (default: local files).
        ray_address: A Ray cluster to join; default env `RAY_ADDRESS` or a local Ray.

    Raises:
        SourceError: a source does not exist (nothing is written).
    """
    location = LakeLocation.from_uri(config.lake)
    listing = list_local(config.sources)
    run = Run("ingest", config.model_dump(mode="json"))
    log.info(
        "run %s: %d input(s) listed, %d refused while listing",
        run.run_id,
        listing.count,
        len(listing.rejections),
    )
    for spec in (ASSETS, ASSET_SOURCES, QUARANTINE, RUNS):
        ensure_table(location, spec)
    assets = ensure_table(location, ASSETS)
    run.input_versions = {"assets": assets.version()}
    known = (
        known_id_index(existing_keys(assets, ASSETS))
        if assets.version() > 0
        else known_id_index(pa.array([], pa.string()))
    )

    results = RESULT_SCHEMA.empty_table()
    if listing.entries:
        started = ensure_ray(ray_address)
        try:
            results = _process(
                listing, config, location, run.run_id, known, reader or LocalReader()
            )
        finally:
            if started:
                ray.shutdown()
    rec = reconcile(listing, results, run_id=run.run_id)
    meta = run.commit_metadata()
    a = run.output(commit_parts(location, ASSETS, rec.parts, app_id=run.run_id, metadata=meta))
    run.output(commit_rows(location, ASSET_SOURCES, rec.sources, app_id=run.run_id, metadata=meta))
    q = run.output(
        commit_rows(location, QUARANTINE, rec.quarantine, app_id=run.run_id, metadata=meta)
    )
    ok_inputs = rec.counts["candidates"] + rec.counts["known"]
    run.counts = {
        "listed": rec.counts["listed"],
        "ingested": a.rows_written,
        "duplicates": ok_inputs - a.rows_written,
        "quarantined": rec.counts["quarantined"],
        "quarantine_new": q.rows_written,
        "worker_crash": rec.counts["worker_crash"],
    }
    run.record(location)
    return IngestSummary(run.run_id, run.counts, dict(run.output_versions))


def _process(
    listing: Listing,
    config: IngestConfig,
    location: LakeLocation,
    run_id: str,
    known: np.ndarray,
    reader: Reader,
) -> pa.Table:
    """Runs `ingest_batch` over the listed entries on Ray; returns all result rows."""
    n = len(listing.entries)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
    blocks = config.num_blocks or max(min(n, cpus), math.ceil(n / config.rows_per_block))
    remote_args: dict[str, Any] = {}
    if config.sanitize.max_pixels != DEFAULT_MAX_PIXELS:
        env = {"OPENCV_IO_MAX_IMAGE_PIXELS": str(config.sanitize.max_pixels)}
        remote_args["runtime_env"] = {"env_vars": env}
    fn_kwargs = {
        "config": config.sanitize,
        "location": location,
        "run_id": run_id,
        "known_ids": known,
        "reader": reader,
    }
    items = ray.data.from_items(
        entries_to_rows(listing.entries), override_num_blocks=min(blocks, n)
    )
    results = items.map_batches(
        ingest_batch,  # type: ignore[arg-type]
        batch_size=None,
        batch_format="pyarrow",
        zero_copy_batch=True,
        fn_kwargs=fn_kwargs,
        **remote_args,  # Ray options for each task (`runtime_env`)
    )
    tables: list[pa.Table] = [
        pa.table(b).cast(RESULT_SCHEMA)
        for b in results.iter_batches(batch_size=None, batch_format="pyarrow")
    ]
    return pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table()
