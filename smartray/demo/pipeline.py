"""The demo end to end: build a small real corpus, ingest it twice, manage the lake, show it.

One Ray (started here unless the process already has one) serves every stage in turn.
"""

from __future__ import annotations

from collections.abc import Iterator

import ray

from smartray.cluster import ensure_ray
from smartray.curate import CurateConfig, curate
from smartray.demo.corpus import build_corpus
from smartray.ingest import IngestConfig, ingest
from smartray.query import format_lake, format_table, query
from smartray.sample import snapshot_names, take_snapshot
from smartray.split import check_leaks, split
from smartray.tables import Lake

GROUPS_QUERY = (
    "SELECT g.dup_group, count(*) AS assets, min(a.media_type) AS kind, "
    "count(DISTINCT s.split) AS splits FROM dup_groups g JOIN assets a ON a.asset_id = g.asset_id "
    "JOIN splits s ON s.asset_id = g.asset_id AND s.split_name = 'demo' "
    "GROUP BY g.dup_group HAVING count(*) > 1 ORDER BY assets DESC, g.dup_group LIMIT 8"
)
DEMO_QUERY = (
    "SELECT reason, count(*) AS inputs, min(source_uri) AS example "
    "FROM quarantine GROUP BY reason ORDER BY reason"
)
VIDEOS_QUERY = (
    "SELECT v.codec, v.width, v.height, round(v.duration_s, 1) AS seconds, "
    "count(a.asset_id) AS frames_kept FROM videos v JOIN assets a ON a.video_id = v.video_id "
    "GROUP BY v.codec, v.width, v.height, v.duration_s ORDER BY seconds DESC"
)
ASSETS_QUERY = (
    "SELECT a.source_format, a.format, count(*) AS assets, sum(a.blurred_regions) AS blurred, "
    "round(avg(a.blur), 1) AS mean_blur FROM assets a GROUP BY a.source_format, a.format "
    "ORDER BY assets DESC"
)


def run_demo(
    data: str, *, lake: str | None = None, ray_address: str | None = None
) -> Iterator[str]:
    """Builds the corpus, ingests it twice, manages the lake; yields what to print as it goes.

    Args:
        data: Folder the demo corpus is written to.
        lake: Lake root (default env `SMARTRAY_LAKE` or ./lake).
        ray_address: Ray cluster to join (default: a local Ray, stopped at the end).
    """
    root = build_corpus(data)
    yield f"demo corpus: {root.resolve()}"
    started = ensure_ray(ray_address)
    try:
        config = IngestConfig(sources=(str(root),), lake=lake)
        yield "first run:  " + ingest(config).line()
        yield "second run: " + ingest(config).line()
        yield from manage(lake)
    finally:
        if started:
            ray.shutdown()
    yield ""
    yield format_lake(Lake(lake))
    for sql in (ASSETS_QUERY, VIDEOS_QUERY, GROUPS_QUERY, DEMO_QUERY):
        yield f"\n$ smartray query {sql!r}"
        yield format_table(query(sql, lake=lake))


def manage(lake: str | None) -> Iterator[str]:
    """Groups near-duplicates, splits by group, draws a diverse snapshot, checks leaks."""
    yield "curate:     " + curate(CurateConfig(), lake=lake).line()
    summary = split("demo", "train=0.8,val=0.1,test=0.1", lake=lake)
    yield "\n".join(["split:", *summary.lines()])
    yield "leaks:      " + check_leaks(lake=lake, split_name="demo").lines()[0]
    # snapshots never change: one per assets version
    name = f"demo-diverse-v{Lake(lake).version('assets')}"
    if name in snapshot_names(Lake(lake)):
        yield f"sample:     snapshot {name!r} exists (drawn by an earlier demo)"
    else:
        snap = take_snapshot(
            name, strategy="diverse", n=12, lake=lake, where="media_type = 'image'"
        )
        yield "sample:     " + snap.line()
