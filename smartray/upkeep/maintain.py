"""`smartray maintain`: compact small files, vacuum what no pinned version needs, checkpoint.

Per table, in this order:
1. compaction rewrites small files into files of about `target_size_mb`;
2. vacuum deletes files removed from the table before its retention cutoff, a cutoff
   that still covers the oldest version a `runs` or `snapshots` row pins (`pins.py`);
3. orphan files go: Parquet files in the table's folder that no commit ever added (the
   parts of a driver killed before its commit), once older than `orphan_grace_minutes`;
   a younger one may belong to a job still running, which commits it later;
4. a checkpoint lets readers load the table without replaying every commit.

Vacuum runs before the checkpoint: a checkpoint leaves out removals older than the
table's `delta.deletedFileRetentionDuration` (7 days by default), and vacuum (delta-rs'
lite mode) finds files to delete through those removals only. Expired log files are
never cleaned up: a pinned version needs its commits to be read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smartray.errors import ConfigError
from smartray.tables import ALL_TABLES, Lake, LakeLocation, LakeSession, spec_for
from smartray.upkeep import logfiles
from smartray.upkeep.pins import Pin, Retention, oldest_pins, pins, retention_for

log = logging.getLogger(__name__)

MIB = 1024 * 1024
TARGET_SIZE_MB = 100  # compaction's target file size
MIN_RETENTION_HOURS = 168  # the smallest vacuum retention: Delta's default, 7 days
ORPHAN_GRACE_MINUTES = logfiles.ORPHAN_GRACE_MINUTES


@dataclass(frozen=True)
class TableUpkeep:
    """What maintain did to one table (or, in a dry run, would do).

    Attributes:
        table: Table name.
        version_before: Version found.
        version_after: Version left (compaction and vacuum each commit).
        files_before: Data files of the version found.
        files_after: Data files of the version left.
        files_compacted: Small files rewritten (removed by compaction).
        files_added: Files compaction wrote.
        vacuumed: Files vacuum deleted (in a dry run: would delete), relative paths.
        retention: The vacuum retention and why.
        checkpoint: True if a checkpoint was written.
        orphans: Never-committed files deleted (in a dry run: would delete), relative paths.
    """

    table: str
    version_before: int
    version_after: int
    files_before: int
    files_after: int
    files_compacted: int
    files_added: int
    vacuumed: list[str]
    retention: Retention
    checkpoint: bool
    orphans: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MaintainResult:
    """The outcome of `maintain`.

    Attributes:
        lake: The lake root.
        tables: One entry per table maintained, in catalog order.
        missing: Tables asked for that do not exist yet.
        dry_run: Nothing was written.
        run_id: The `runs` row recorded (None in a dry run or when nothing was maintained).
        runs_version: The `runs` version holding that row.
    """

    lake: str
    tables: list[TableUpkeep] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    dry_run: bool = False
    run_id: str | None = None
    runs_version: int | None = None


def check_tables(names: Sequence[str] | None) -> list[str]:
    """The tables to maintain, in catalog order: `names`, or all of them.

    Raises:
        ConfigError: a name is not a table of the catalog.
    """
    if names is None:
        return list(ALL_TABLES)
    unknown = sorted(set(names) - set(ALL_TABLES))
    if unknown:
        raise ConfigError(
            f"--tables: unknown table(s) {', '.join(unknown)}; known tables: "
            f"{', '.join(ALL_TABLES)}"
        )
    return [n for n in ALL_TABLES if n in names]


def maintain(
    location: LakeLocation,
    *,
    tables: Sequence[str] | None = None,
    target_size_mb: int = TARGET_SIZE_MB,
    min_retention_hours: int = MIN_RETENTION_HOURS,
    dry_run: bool = False,
    config: dict[str, Any] | None = None,
    now_ms: int | None = None,
    orphan_grace_minutes: float = ORPHAN_GRACE_MINUTES,
) -> MaintainResult:
    """Compacts, vacuums and checkpoints each existing table; records a `runs` row.

    Args:
        location: The lake.
        tables: Table names to maintain; None maintains every table there is.
        target_size_mb: Compaction's target file size, in MiB.
        min_retention_hours: The smallest vacuum retention; a table whose oldest pinned
            version is older keeps its removed files back to that version's commit.
        dry_run: List what vacuum would delete; write nothing (no compaction, no
            checkpoint, no `runs` row).
        config: The job's settings, recorded in the `runs` row.
        now_ms: The current time in ms since the epoch (default: the clock).
        orphan_grace_minutes: Files no commit ever added are deleted once older than
            this; keep it above the longest time a job takes from writing its first part
            to its commit (0 when no job is running).

    Raises:
        ConfigError: an unknown table name; nothing was written.
    """
    wanted = check_tables(tables)
    lake = Lake.at(location)
    existing = [n for n in wanted if lake.exists(n)]
    missing = [n for n in wanted if n not in existing] if tables is not None else []
    if not existing:
        return MaintainResult(location.root, missing=missing, dry_run=dry_run)
    oldest = oldest_pins(pins(location))  # read before `runs` itself is compacted
    session = lake.session("maintain", dict(config or {}))
    run = session.run
    done: list[TableUpkeep] = []
    for name in existing:
        t = _maintain_table(
            session,
            name,
            oldest.get(name),
            target_size=target_size_mb * MIB,
            min_hours=min_retention_hours,
            dry_run=dry_run,
            now_ms=now_ms,
            orphan_grace_minutes=orphan_grace_minutes,
        )
        done.append(t)
        if t.version_after != t.version_before:
            run.output_versions[name] = t.version_after
        run.counts[f"{name}.files_compacted"] = t.files_compacted
        run.counts[f"{name}.files_added"] = t.files_added
        run.counts[f"{name}.files_vacuumed"] = len(t.vacuumed)
        run.counts[f"{name}.orphans_deleted"] = len(t.orphans)
        if t.retention.hours is not None:
            run.counts[f"{name}.retention_hours"] = t.retention.hours
    if dry_run:
        session.discard()
        return MaintainResult(location.root, done, missing, dry_run=True)
    recorded = session.record()
    return MaintainResult(location.root, done, missing, False, run.run_id, recorded.version)


def _last_checkpoint(location: LakeLocation, name: str) -> int | None:
    """The version of the table's last checkpoint, from `_delta_log/_last_checkpoint`."""
    fs, root = location.filesystem()
    try:
        with fs.open_input_stream(f"{root}/{name}/_delta_log/_last_checkpoint") as f:
            return int(json.loads(f.read())["version"])
    except (OSError, KeyError, ValueError, TypeError):  # none yet (S3: OSError), or unreadable
        return None


def _maintain_table(
    session: LakeSession,
    name: str,
    pin: Pin | None,
    *,
    target_size: int,
    min_hours: int,
    dry_run: bool,
    now_ms: int | None,
    orphan_grace_minutes: float,
) -> TableUpkeep:
    spec = spec_for(name)
    version_before, files_before = session.latest_version(spec), session.file_count(spec)
    compacted = added = 0
    if not dry_run:
        compacted, added = session.compact(spec, target_size=target_size)
        if compacted:
            log.info("table %s: compacted %d file(s) into %d", name, compacted, added)
    now = int(time.time() * 1000) if now_ms is None else now_ms  # after a long compaction
    retention = retention_for(session, name, pin, min_hours=min_hours, now_ms=now)
    vacuumed: list[str] = []
    if retention.hours is not None:
        vacuumed = session.vacuum(spec, retention_hours=retention.hours, dry_run=dry_run)
    found = logfiles.orphans(
        session.location, name, grace_minutes=orphan_grace_minutes, now_ms=now_ms
    )
    orphans = [f.path for f in found] if dry_run else logfiles.delete(session.location, found)
    if orphans and not dry_run:
        log.info("table %s: deleted %d orphan file(s), never committed", name, len(orphans))
    checkpoint = False
    if not dry_run and _last_checkpoint(session.location, name) != session.latest_version(spec):
        session.checkpoint(spec)
        checkpoint = True
    return TableUpkeep(
        table=name,
        version_before=version_before,
        version_after=session.latest_version(spec),
        files_before=files_before,
        files_after=session.file_count(spec),
        files_compacted=compacted,
        files_added=added,
        vacuumed=sorted(vacuumed),
        retention=retention,
        checkpoint=checkpoint,
        orphans=sorted(orphans),
    )


def summary_lines(result: MaintainResult, *, max_paths: int = 5) -> list[str]:
    """What `smartray maintain` prints: one line per table, then one final line.

    Args:
        result: What `maintain` returned.
        max_paths: In a dry run, how many of each table's files to vacuum to list.
    """
    lines: list[str] = []
    if result.missing:
        lines.append(f"not in the lake yet, skipped: {', '.join(result.missing)}")
    if not result.tables:
        what = "none of the tables asked for" if result.missing else "no tables yet"
        lines.append(f"lake {result.lake}: {what}; nothing to maintain")
        return lines
    for t in result.tables:
        hours = "all" if t.retention.hours is None else f"{t.retention.hours} h"
        keep = f"retention {hours} ({t.retention.reason})"
        if result.dry_run:
            lines.append(
                f"{t.table}: version {t.version_before}, files {t.files_before}, "
                f"would vacuum {len(t.vacuumed)} file(s), {keep}, "
                f"would delete {len(t.orphans)} orphan file(s)"
            )
            lines += [f"  {p}" for p in t.vacuumed[:max_paths]]
            lines += [f"  {p} (orphan)" for p in t.orphans[:max_paths]]
            if len(t.vacuumed) > max_paths:
                lines.append(f"  ... and {len(t.vacuumed) - max_paths} more")
        else:
            lines.append(
                f"{t.table}: version {t.version_before} -> {t.version_after}, "
                f"files {t.files_before} -> {t.files_after}, "
                f"vacuumed {len(t.vacuumed)} file(s), {keep}, "
                f"{len(t.orphans)} orphan file(s) deleted"
            )
    vacuumed = sum(len(t.vacuumed) for t in result.tables)
    if result.dry_run:
        lines.append(
            f"maintain (dry run): {len(result.tables)} table(s), vacuum would delete "
            f"{vacuumed} file(s); nothing written"
        )
    else:
        compacted = sum(t.files_compacted for t in result.tables)
        added = sum(t.files_added for t in result.tables)
        orphans = sum(len(t.orphans) for t in result.tables)
        lines.append(
            f"maintain: {len(result.tables)} table(s), {compacted} small file(s) compacted "
            f"into {added}, {vacuumed} file(s) vacuumed, {orphans} orphan file(s) deleted; "
            f"run {result.run_id} "
            f"(runs version {result.runs_version})"
        )
    return lines
