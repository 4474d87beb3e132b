"""The ingest job on Ray: list, read + sanitize + write parts, reconcile, commit.

Layout (PERFORMANCE.md): the listing is cut into blocks by estimated work
(`blocks.py`); one Ray task per block reads its files itself, sanitizes them and writes
its new assets as one Parquet part, so image bytes never cross the object store, and
returns a typed `BlockResult` (`tasks.py`). The driver then reconciles and commits each
table once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from smartray.ingest import blocks as cut
from smartray.ingest.config import IngestConfig
from smartray.ingest.incremental import FINGERPRINT_COLUMNS, split_unchanged
from smartray.ingest.ops import ingest_block, known_id_index
from smartray.ingest.outcomes import BlockResult, blur_counts
from smartray.ingest.reconcile import reconcile
from smartray.ingest.resanitize import gone, plan, resanitize_block
from smartray.ingest.tasks import (
    BlockFn,
    IngestTaskError,
    RayUse,
    cluster_cpus,
    local_files_placement,
    run_blocks,
)
from smartray.ingest.video import ingest_video_block, is_video
from smartray.sanitize.cv import DEFAULT_MAX_PIXELS
from smartray.sanitize.detect import load_detectors
from smartray.sources import S3Settings, SourceReader, list_inputs
from smartray.sources.base import Reader, SourceEntry
from smartray.tables import ASSET_SOURCES, ASSETS, QUARANTINE, RUNS, VIDEOS, Lake, RunSummary

__all__ = ["IngestSummary", "IngestTaskError", "ResanitizeSummary", "ingest", "resanitize"]

log = logging.getLogger(__name__)


@dataclass
class IngestSummary(RunSummary):
    """What an ingest run did; `line()` is the job's one summary line.

    `timing` (not recorded in `runs`: it differs run to run) has the seconds from the
    call to the first task starting (`first_task_s`), from then to the last task's end
    (`tasks_s`), and in all (`total_s`), and the number of tasks (`tasks`).
    """

    timing: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """listed, ingested, duplicates, quarantined, and table versions."""
        c = self.counts
        versions = ", ".join(f"{k} v{v}" for k, v in sorted(self.versions.items()))
        videos = f"; videos {c['videos']} ({c['frames']} new frames)" if c.get("videos") else ""
        return (
            f"ingest {self.run_id}: listed {c['listed']}, unchanged {c['unchanged']}, "
            f"ingested {c['ingested']}, "
            f"duplicates {c['duplicates']}, quarantined {c['quarantined']} "
            f"({c['quarantine_new']} new rows){videos}{_blurred(c)}; tables: {versions}"
        )


def _blurred(c: dict[str, int]) -> str:
    if "blurred_regions" not in c:  # a run recorded before the blur was audited
        return ""
    return f"; blurred {c['blurred_regions']} regions in {c['blurred_assets']} assets"


def ingest(
    config: IngestConfig, *, reader: Reader | None = None, ray_address: str | None = None
) -> IngestSummary:
    """Ingests images and videos from local folders and `s3://` prefixes, exactly once.

    Images become assets; each video becomes a `videos` row and its sampled frames
    assets. Incremental runs skip unchanged images unread; videos are decoded again
    (other sampling flags may choose other frames), and add only frames not yet there.

    Args:
        config: Sources, lake and settings.
        reader: Reads inputs' bytes (default: local files and S3 objects).
        ray_address: A Ray cluster to join; default env `RAY_ADDRESS` or a local Ray.

    Raises:
        SourceError: a source does not exist or cannot be listed (nothing is written).
    """
    called = time.time()
    if config.sanitize.blur and config.sanitize.detectors:
        # a bad name is a usage error, now; a constructor that hangs fails the run, now
        load_detectors(tuple(config.sanitize.detectors), config.sanitize.detector_timeout_s)
    if config.resanitize:
        return resanitize(config, reader=reader, ray_address=ray_address)
    with RayUse(ray_address) as ray_use:
        return _ingest(config, reader, ray_use, called)


def _ingest(
    config: IngestConfig, reader: Reader | None, ray_use: RayUse, called: float
) -> IngestSummary:
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    lake = Lake(config.lake)
    s3 = S3Settings.from_env()
    ray_use.early()
    listing = list_inputs(config.sources, s3)
    t_list = lap()
    session = lake.session("ingest", config.model_dump(mode="json"))
    run = session.run
    log.info(
        "run %s: %d input(s) listed, %d refused while listing",
        run.run_id,
        listing.count,
        len(listing.rejections),
    )
    videos = [e for e in listing.entries if is_video(e.uri)]
    specs = (ASSETS, ASSET_SOURCES, QUARANTINE, RUNS) + ((VIDEOS,) if videos else ())
    for spec in specs:  # created up front, so every version the run reads is a number
        session.ensure(spec)
        session.pin(spec)
    todo = [e for e in listing.entries if not is_video(e.uri)]
    unchanged = list[SourceEntry]()
    if config.incremental:
        todo, unchanged = split_unchanged(
            todo,
            session.read(ASSET_SOURCES, columns=FINGERPRINT_COLUMNS),
            session.read(QUARANTINE, columns=[*FINGERPRINT_COLUMNS, "reason"]),
        )
    if todo or videos:
        ray_use.need()  # workers import while the driver reads the known ids
    known = known_id_index(session.keys(ASSETS))
    log.info(
        "run %s: %d input(s) to read, %d unchanged since an earlier run",
        run.run_id,
        len(todo),
        len(unchanged),
    )
    t_prepare = lap()
    images: list[BlockResult] = []
    video_results: list[BlockResult] = []
    crashes: dict[str, str] = {}
    common = {
        "config": config.sanitize,
        "location": lake.location,
        "run_id": run.run_id,
        "known_ids": known,
        "reader": reader or SourceReader(s3),
    }
    if todo:
        images, crashes = _run(todo, config, common, ingest_block)
    if videos:  # one video per task: each is a long job of its own
        known_videos = known_id_index(session.keys(VIDEOS))
        kwargs = {**common, "video": config.video, "known_videos": known_videos}
        video_results, lost = _run(videos, config, kwargs, ingest_video_block, rows=1)
        crashes.update(lost)
    t_process = lap()
    rec = reconcile(
        listing,
        images,
        video_results,
        run_id=run.run_id,
        unchanged=frozenset(e.uri for e in unchanged),
        crashes=crashes,
    )
    a = session.commit(ASSETS, parts=rec.parts, mode="parts")
    f = session.commit(ASSETS, parts=rec.frame_parts, mode="parts")
    if videos:
        session.commit(VIDEOS, rec.videos)
    session.commit(ASSET_SOURCES, rec.sources)
    q = session.commit(QUARANTINE, rec.quarantine)
    ok_inputs = rec.counts["candidates"] + rec.counts["known"] + rec.counts["videos"]
    ingested = a.rows_written + rec.counts["videos_new"]
    run.counts = {
        "listed": rec.counts["listed"],
        "unchanged": rec.counts["unchanged"],
        "ingested": ingested,  # inputs that added to the lake (images, videos)
        "duplicates": ok_inputs - ingested,
        "videos": rec.counts["videos"],
        "frames": f.rows_written,
        "quarantined": rec.counts["quarantined"],
        "quarantine_new": q.rows_written,
        "worker_crash": rec.counts["worker_crash"],
        **blur_counts([*images, *video_results]),
    }
    session.record()
    log.info(
        "run %s: list %.1f s, prepare %.1f s, process %.1f s, reconcile + commit %.1f s",
        run.run_id, t_list, t_prepare, t_process, lap(),
    )  # fmt: skip
    summary = IngestSummary.of(run)
    summary.timing = _timing(called, [*images, *video_results])
    return summary


def _timing(called: float, results: Sequence[BlockResult]) -> dict[str, float]:
    """`IngestSummary.timing`: fixed cost before the first task, the tasks' span, total."""
    timing = {"total_s": time.time() - called, "tasks": float(len(results))}
    if results:
        first = min(r.started for r in results)
        timing["first_task_s"] = first - called
        timing["tasks_s"] = max(r.finished for r in results) - first
    return {k: round(v, 3) for k, v in timing.items()}


class ResanitizeSummary(IngestSummary):
    """What a re-sanitize run did; `line()` is its summary, then one line per gone asset."""

    gone: tuple[str, ...] = ()

    def line(self) -> str:
        """targets, re-sanitized, gone, skipped, blurred; then the gone assets."""
        c = self.counts
        versions = ", ".join(f"{k} v{v}" for k, v in sorted(self.versions.items()))
        head = (
            f"resanitize {self.run_id}: assets {c['targets']}, resanitized {c['resanitized']}, "
            f"gone {c['gone']}, frames and augmented skipped {c['skipped']}{_blurred(c)}; "
            f"tables: {versions}"
        )
        return "\n".join([head, *(f"gone: {g}" for g in self.gone)])


def resanitize(
    config: IngestConfig, *, reader: Reader | None = None, ray_address: str | None = None
) -> ResanitizeSummary:
    """Sanitizes image assets again from their recorded sources; replaces their rows once.

    See `smartray/ingest/resanitize.py`. The new rows pass through the driver's memory
    for the one upsert (which rewrites only the files holding those asset ids).
    """
    lake = Lake(config.lake)
    session = lake.session("ingest", config.model_dump(mode="json"))
    run = session.run
    for spec in (ASSETS, ASSET_SOURCES, RUNS):
        session.ensure(spec)
        session.pin(spec)
    sources = session.read(ASSET_SOURCES, columns=["asset_id", "source_uri"])
    entries, targets, skipped = plan(
        session.read(ASSETS, columns=["asset_id", "media_type"]), sources, list(config.sources)
    )
    results: list[BlockResult] = []
    crashes: dict[str, str] = {}
    if entries:
        with RayUse(ray_address) as ray_use:
            ray_use.need()
            kwargs = {
                "config": config.sanitize,
                "location": lake.location,
                "run_id": run.run_id,
                "known_ids": known_id_index(pa.array(list(targets), pa.string())),
                "reader": reader or SourceReader(S3Settings.from_env()),
            }
            results, crashes = _run(entries, config, kwargs, resanitize_block)
    parts = sorted({r.part.path for r in results if r.part is not None})
    fs, root = lake.location.filesystem()
    base = f"{root}/{ASSETS.name}"
    if parts:
        rows = pa.concat_tables(pq.read_table(f"{base}/{p}", filesystem=fs) for p in parts)
        session.commit(ASSETS, rows, mode="upsert")
    for p in parts:  # the upsert wrote its own files; these were never committed
        fs.delete_file(f"{base}/{p}")
    lost = gone(targets, results, crashes)
    run.counts = {
        "targets": len(targets),
        "resanitized": len(targets) - len(lost),
        "gone": len(lost),
        "skipped": skipped,
        **blur_counts(results),
    }
    session.record()
    for line in lost:
        log.warning("not re-sanitized, no source left: %s", line)
    summary = ResanitizeSummary.of(run)
    summary.gone = tuple(lost)
    return summary


def _run(
    entries: list[SourceEntry],
    config: IngestConfig,
    kwargs: dict[str, Any],
    fn: BlockFn,
    *,
    rows: int | None = None,
) -> tuple[list[BlockResult], dict[str, str]]:
    """Cuts `entries` into blocks and runs `fn` on each as a Ray task (`tasks.run_blocks`).

    Blocks: `rows` or `config.rows_per_block` inputs each if set, else `config.num_blocks`
    equal ones if set, else about `config.block_seconds` of estimated work each.
    """
    rows = rows or config.rows_per_block
    if rows:
        blocks = cut.by_count(entries, rows)
    elif config.num_blocks:
        blocks = cut.into(entries, config.num_blocks)
    else:
        blur = config.sanitize.blur and bool(config.sanitize.detectors)
        workers = cluster_cpus()
        blocks = cut.by_work(entries, workers=workers, target_s=config.block_seconds, blur=blur)
    log.info("%d input(s) in %d task(s)", len(entries), len(blocks))
    remote_args = local_files_placement(entries)
    if config.sanitize.max_pixels != DEFAULT_MAX_PIXELS:
        env = {"OPENCV_IO_MAX_IMAGE_PIXELS": str(config.sanitize.max_pixels)}
        remote_args["runtime_env"] = {"env_vars": env}
    return run_blocks(blocks, fn, kwargs, retries=config.task_retries, remote_args=remote_args)
