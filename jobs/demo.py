"""The demo: build a small real corpus, ingest it twice, show the lake.

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
    finally:
        if started:
            ray.shutdown()
    print(flush=True)
    tables_job.main([] if cfg.lake is None else ["--lake", cfg.lake])
    print(f"\n$ smartray query {ASSETS_QUERY!r}", flush=True)
    print(format_table(query(ASSETS_QUERY, lake=cfg.lake)), flush=True)
    print(f"\n$ smartray query {VIDEOS_QUERY!r}", flush=True)
    print(format_table(query(VIDEOS_QUERY, lake=cfg.lake)), flush=True)
    print(f"\n$ smartray query {DEMO_QUERY!r}", flush=True)
    print(format_table(query(DEMO_QUERY, lake=cfg.lake)), flush=True)


def main(argv: list[str] | None = None) -> None:
    """`smartray demo` and `python -m jobs.demo`."""
    run_job(DemoJob, argv, "smartray demo", run)


if __name__ == "__main__":
    main()
    gc.collect()  # deltalake can abort at exit after reading a table (upstream bug)
