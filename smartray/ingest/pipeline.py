"""The ingest job on Ray Data: list, read + sanitize + write parts, reconcile, commit.

Layout (PERFORMANCE.md): the listing becomes a small dataset of paths; one fused
`map_batches(batch_size=None)` task per block reads its files itself, sanitizes them and
writes its new assets as one Parquet part, so image bytes never cross the object store.
The driver then reconciles and commits each table once.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
from ray.exceptions import OutOfMemoryError, WorkerCrashedError

from smartray.cluster.local import ensure_ray
from smartray.errors import SmartrayError, SourceError
from smartray.ingest.config import IngestConfig
from smartray.ingest.incremental import FINGERPRINT_COLUMNS, split_unchanged
from smartray.ingest.ops import (
    INPUT_SCHEMA,
    RESULT_SCHEMA,
    blur_counts,
    entries_to_rows,
    ingest_batch,
    known_id_index,
)
from smartray.ingest.reconcile import reconcile
from smartray.ingest.resanitize import gone, plan, resanitize_batch
from smartray.ingest.video import ingest_video_batch, is_video
from smartray.sanitize.cv import DEFAULT_MAX_PIXELS
from smartray.sanitize.detect import load_detectors
from smartray.sources import S3Settings, SourceReader, list_inputs
from smartray.sources.base import Reader, SourceEntry
from smartray.tables import ASSET_SOURCES, ASSETS, QUARANTINE, RUNS, VIDEOS, Lake, RunSummary

log = logging.getLogger(__name__)


class IngestTaskError(SmartrayError):
    """An ingest task failed for a reason other than its input (nothing was committed)."""


class IngestSummary(RunSummary):
    """What an ingest run did; `line()` is the job's one summary line."""

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
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    if config.sanitize.blur and config.sanitize.detectors:
        load_detectors(tuple(config.sanitize.detectors))  # a bad name is a usage error, now
    if config.resanitize:
        return resanitize(config, reader=reader, ray_address=ray_address)
    lake = Lake(config.lake)
    location = lake.location
    s3 = S3Settings.from_env()
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
    started = ensure_ray(ray_address) if todo or videos else False
    if todo or videos:
        _warm_up_workers()  # workers import while the driver reads the known ids
    known = known_id_index(session.keys(ASSETS))
    known_videos = known_id_index(session.keys(VIDEOS) if videos else pa.array([], pa.string()))
    log.info(
        "run %s: %d input(s) to read, %d unchanged since an earlier run",
        run.run_id,
        len(todo),
        len(unchanged),
    )
    t_prepare = lap()
    results, crashes = RESULT_SCHEMA.empty_table(), dict[str, str]()
    try:
        common = {
            "config": config.sanitize,
            "location": location,
            "run_id": run.run_id,
            # In the object store once; every task maps the same bytes (zero-copy).
            "known_ref": ray.put(known) if todo or videos else None,
            "reader": reader or SourceReader(s3),
        }
        outputs = []
        if todo:
            outputs.append(_process(todo, config, common, _ingest_batch, config.rows_per_block))
        if videos:  # one video per task: each is a long job of its own
            video_kwargs = {
                **common,
                "video": config.video,
                "known_videos_ref": ray.put(known_videos),
            }
            outputs.append(_process(videos, config, video_kwargs, _ingest_video_batch, 1))
        if outputs:
            results = pa.concat_tables([r for r, _ in outputs])
            crashes = {k: v for _, c in outputs for k, v in c.items()}
    finally:
        if started:
            ray.shutdown()
    t_process = lap()
    rec = reconcile(
        listing,
        results,
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
        **blur_counts(results),
    }
    session.record()
    log.info(
        "run %s: list %.1f s, prepare %.1f s, process %.1f s, reconcile + commit %.1f s",
        run.run_id, t_list, t_prepare, t_process, lap(),
    )  # fmt: skip
    return IngestSummary.of(run)


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
    results, crashes = RESULT_SCHEMA.empty_table(), dict[str, str]()
    if entries:
        started = ensure_ray(ray_address)
        try:
            kwargs = {
                "config": config.sanitize,
                "location": lake.location,
                "run_id": run.run_id,
                "known_ref": ray.put(known_id_index(pa.array(list(targets), pa.string()))),
                "reader": reader or SourceReader(S3Settings.from_env()),
            }
            results, crashes = _process(
                entries, config, kwargs, _resanitize_batch, config.rows_per_block
            )
        finally:
            if started:
                ray.shutdown()
    new = results.filter(pc.equal(results["status"], "new"))
    parts = sorted(set(new["part_path"].to_pylist()))
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


def _import_worker_modules() -> int:
    import ray.data  # noqa: F401 -- what a Ray Data map task needs first

    import smartray.ingest.ops  # noqa: F401

    return os.getpid()


def _warm_up_workers() -> None:
    """Has each CPU's worker import Ray Data and the operators now, without waiting.

    A fresh job's workers spend ~1 s each importing before their first map task; this
    overlaps that with the driver's own preparation. The tasks use no CPU reservation
    beyond the import and are never waited on.
    """
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
    warm = ray.remote(num_cpus=1, max_retries=0)(_import_worker_modules)
    for _ in range(min(cpus, 64)):
        warm.remote()


def _process(
    entries: list[SourceEntry],
    config: IngestConfig,
    batch_kwargs: dict[str, Any],
    fn: Callable[..., pa.Table],
    rows_per_block: int,
) -> tuple[pa.Table, dict[str, str]]:
    """Runs the batch function `fn` over `entries` on Ray; returns results and crashes.

    A task whose worker dies is retried `config.task_retries` times by Ray. A block that
    still fails is dropped by Ray Data (instead of failing the run), and its inputs are
    tried once more, each in a task of its own, so one poisonous input costs only itself:
    what kills its worker every time is reported back as a `worker_crash`.
    """
    n = len(entries)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
    blocks = config.num_blocks or max(min(n, cpus), math.ceil(n / rows_per_block))
    remote_args: dict[str, Any] = {"max_retries": config.task_retries}
    remote_args.update(_local_files_placement(entries))
    if config.sanitize.max_pixels != DEFAULT_MAX_PIXELS:
        env = {"OPENCV_IO_MAX_IMAGE_PIXELS": str(config.sanitize.max_pixels)}
        remote_args["runtime_env"] = {"env_vars": env}
    ctx = ray.data.DataContext.get_current()
    saved = ctx.max_errored_blocks, ctx.op_resource_reservation_enabled
    ctx.max_errored_blocks = -1  # a failed block is reconciled below, not fatal
    # One map operator after an in-memory input: nothing to reserve resources against,
    # and the reservation starts the tasks one by one (a core idles ~1 s per worker).
    ctx.op_resource_reservation_enabled = False
    try:
        items = ray.data.from_items(entries_to_rows(entries), override_num_blocks=min(blocks, n))
        with warnings.catch_warnings():
            # `max_retries` has no named parameter in Ray 2.60 and Ray Data's default is
            # to retry a dead worker's task forever: a poisonous input would never end.
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            results = items.map_batches(
                fn,
                batch_size=None,
                batch_format="pyarrow",
                zero_copy_batch=True,
                fn_kwargs=batch_kwargs,
                **remote_args,
            )
        tables: list[pa.Table] = [
            pa.table(b).cast(RESULT_SCHEMA)
            for b in results.iter_batches(batch_size=None, batch_format="pyarrow")
        ]
    finally:
        ctx.max_errored_blocks, ctx.op_resource_reservation_enabled = saved
    reported = {u for t in tables for u in t.column("uri").to_pylist()}
    missing = [e for e in entries if e.uri not in reported]
    crashes: dict[str, str] = {}
    if missing:
        log.warning("%d input(s) were in failed tasks; trying each on its own", len(missing))
        isolated, crashes = _one_by_one(missing, fn, batch_kwargs, remote_args)
        tables.extend(isolated)
    return (pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table()), crashes


def _local_files_placement(entries: list[SourceEntry]) -> dict[str, Any]:
    """Ray task options that keep reads of local files on the node that has them.

    Local paths name files on the driver's machine. On a cluster of several nodes the
    tasks that read them are pinned to the driver's node; on one node nothing changes.

    Raises:
        SourceError: the driver's node has no CPUs for the tasks (a KubeRay head with
            `num-cpus: "0"`, say): give the job entrypoint CPUs or use s3:// sources.
    """
    if all(e.uri.startswith("s3://") for e in entries):
        return {}
    nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    if len(nodes) <= 1:
        return {}
    here = ray.get_runtime_context().get_node_id()
    cpus = next((n.get("Resources", {}).get("CPU", 0) for n in nodes if n["NodeID"] == here), 0)
    if cpus <= 0:
        raise SourceError(
            "local files are read on the driver's node, and it has no CPUs for tasks: "
            "run the driver on a worker (`entrypointNumCpus: 1` in a RayJob, "
            "`--entrypoint-num-cpus 1` with `ray job submit`) or ingest from s3://"
        )
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=here, soft=False)}


def _one_by_one(
    entries: list[SourceEntry],
    fn: Callable[..., pa.Table],
    batch_kwargs: dict[str, Any],
    remote_args: dict[str, Any],
) -> tuple[list[pa.Table], dict[str, str]]:
    """Runs each entry in its own Ray task; returns results and what killed the others.

    Raises:
        IngestTaskError: a task failed with an error that is not a dead worker (the lake
            cannot be written, say): the run stops before committing anything.
    """
    task = ray.remote(**remote_args)(_ingest_one)
    kwargs_ref = ray.put(batch_kwargs)
    refs = {e.uri: task.remote(fn, entries_to_rows([e]), kwargs_ref) for e in entries}
    tables: list[pa.Table] = []
    crashes: dict[str, str] = {}
    for uri, ref in refs.items():
        try:
            tables.append(ray.get(ref).cast(RESULT_SCHEMA))
        except (WorkerCrashedError, ray.exceptions.NodeDiedError, OutOfMemoryError) as e:
            crashes[uri] = f"worker died on every try: {type(e).__name__}"
            log.error("input %s kills its worker; quarantined as worker_crash", uri)
        except ray.exceptions.RayTaskError as e:
            raise IngestTaskError(f"ingest task for {uri!r} failed: {e.cause!r}") from e
    return tables, crashes


def _ingest_batch(batch: pa.Table, *, known_ref: ray.ObjectRef[Any], **kwargs: Any) -> pa.Table:
    """`ingest_batch` with the known asset ids fetched from the object store."""
    return ingest_batch(batch, known_ids=ray.get(known_ref), **kwargs)


def _resanitize_batch(batch: pa.Table, *, known_ref: ray.ObjectRef[Any], **kwargs: Any) -> pa.Table:
    """`resanitize_batch` with the asset ids to re-sanitize fetched from the object store."""
    return resanitize_batch(batch, known_ids=ray.get(known_ref), **kwargs)


def _ingest_video_batch(
    batch: pa.Table, *, known_ref: ray.ObjectRef[Any], known_videos_ref: ray.ObjectRef[Any],
    **kwargs: Any,
) -> pa.Table:  # fmt: skip
    """`ingest_video_batch` with the known asset and video ids from the object store."""
    return ingest_video_batch(
        batch, known_ids=ray.get(known_ref), known_videos=ray.get(known_videos_ref), **kwargs
    )


def _ingest_one(
    fn: Callable[..., pa.Table], rows: list[dict[str, Any]], batch_kwargs: dict[str, Any]
) -> pa.Table:
    return fn(pa.Table.from_pylist(rows, schema=INPUT_SCHEMA), **batch_kwargs)
