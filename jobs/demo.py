"""The demo: build a small real corpus, ingest it twice, curate and split it, show the lake.

`smartray demo [--lake ./lake] [--data ./demo-data]` (what `make demo` runs).
"""

import gc

import ray
from pydantic import Field

from jobs import tables as tables_job
from smartray.cluster import ensure_ray
from smartray.demo.corpus import build_corpus
from smartray.ingest import IngestConfig, ingest
from smartray.jobrun import JobSettings, run_job
from smartray.tables.query import format_table, query

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


class DemoJob(JobSettings):
    """Run the demo end to end on data that ships inside packages."""

    lake: str | None = Field(None, description="lake root (default ./lake)")
    data: str = Field("./demo-data", description="where the demo corpus is written")
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")


def run(cfg: DemoJob) -> None:
    """Builds the corpus, ingests it twice, prints tables and two queries."""
    root = build_corpus(cfg.data)
    print(f"demo corpus: {root.resolve()}", flush=True)
    started = ensure_ray(cfg.ray_address)
    try:
        config = IngestConfig(sources=(str(root),), lake=cfg.lake)
        first = ingest(config)
        print("first run:  " + first.line(), flush=True)
        second = ingest(config)
        print("second run: " + second.line(), flush=True)
        manage(cfg.lake)
    finally:
        if started:
            ray.shutdown()
    print(flush=True)
    tables_job.main([] if cfg.lake is None else ["--lake", cfg.lake])
    print(f"\n$ smartray query {ASSETS_QUERY!r}", flush=True)
    print(format_table(query(ASSETS_QUERY, lake=cfg.lake)), flush=True)
    print(f"\n$ smartray query {VIDEOS_QUERY!r}", flush=True)
    print(format_table(query(VIDEOS_QUERY, lake=cfg.lake)), flush=True)
    print(f"\n$ smartray query {GROUPS_QUERY!r}", flush=True)
    print(format_table(query(GROUPS_QUERY, lake=cfg.lake)), flush=True)
    print(f"\n$ smartray query {DEMO_QUERY!r}", flush=True)
    print(format_table(query(DEMO_QUERY, lake=cfg.lake)), flush=True)


def manage(lake: str | None) -> None:
    """Groups near-duplicates, splits by group, draws a diverse snapshot, checks leaks."""
    from smartray.curate.config import CurateConfig
    from smartray.curate.pipeline import curate
    from smartray.sample.snapshots import snapshot_names, take_snapshot
    from smartray.split.pipeline import check_leaks, split
    from smartray.tables import Lake

    print("curate:     " + curate(CurateConfig(), lake=lake).line(), flush=True)
    summary = split("demo", "train=0.8,val=0.1,test=0.1", lake=lake)
    print("\n".join(["split:", *summary.lines()]), flush=True)
    print("leaks:      " + check_leaks(lake=lake, split_name="demo").lines()[0], flush=True)
    # snapshots never change: one per assets version
    name = f"demo-diverse-v{Lake(lake).version('assets')}"
    if name in snapshot_names(Lake(lake)):
        print(f"sample:     snapshot {name!r} exists (drawn by an earlier demo)", flush=True)
    else:
        snap = take_snapshot(
            name, strategy="diverse", n=12, lake=lake, where="media_type = 'image'"
        )
        print("sample:     " + snap.line(), flush=True)


def main(argv: list[str] | None = None) -> None:
    """`smartray demo` and `python -m jobs.demo`."""
    run_job(DemoJob, argv, "smartray demo", run)


if __name__ == "__main__":
    main()
    gc.collect()  # deltalake can abort at exit after reading a table (upstream bug)
