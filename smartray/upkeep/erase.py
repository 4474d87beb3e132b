"""`smartray erase ID...`: remove assets (or videos) and everything derived from them.

What goes: the assets named, the frames of the videos named, every augmented descendant,
and their rows in every table with an `asset_id` or `video_id` column (all of
`ALL_TABLES`, so tables added later are covered without a change here). Duplicate
groups that held an erased asset are dropped whole, so the next `smartray curate`
regroups their other members without it; a split's `group_key` that named one is blanked.

Bytes: each delete rewrites the files that held the rows (Remove + Add actions, so the
log records no predicate naming the ids); then every Parquet file of the table that a
commit once added, that the new version no longer references and that holds an erased
id (the files just replaced, and older ones that compaction replaced but vacuum has not
yet deleted) is deleted at once; so is a file no commit ever added (a killed job's
part) that holds one, once older than the orphan grace period. A younger uncommitted
file is left alone: it may be the part of an ingest still running, whose commit would
otherwise point at a missing file. Erasure wins over pinned versions: the runs and
snapshots that pinned a version which read one of those files are marked `broken_by`
this run.

The log: a table's statistics leave string columns out (`TableSpec.stats_columns`), and
for what a table recorded before that (and any other mention), `logfiles.scrub_log`
takes the erased ids out of its JSON commits and drops checkpoints that name them
(a fresh checkpoint is written).

The erase run's own `runs` row records how many ids were erased and a digest of them,
never the ids.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from smartray.errors import ConfigError
from smartray.tables import (
    ALL_TABLES,
    ASSETS,
    DUP_GROUPS,
    RUNS,
    SNAPSHOTS,
    SPLITS,
    VIDEOS,
    Lake,
    LakeSession,
    TableSpec,
    spec_for,
)
from smartray.upkeep import logfiles
from smartray.upkeep.pins import Pin, pins

log = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9a-f]{64}$")
ID_COLUMNS = ("asset_id", "video_id")
Rewrite = Callable[[pa.Table], tuple[pa.Table, int]]


@dataclass
class EraseResult:
    """What an erasure removed and broke."""

    run_id: str
    assets: int
    videos: int
    rows: dict[str, int]
    files_deleted: dict[str, int]
    broken_runs: list[str] = field(default_factory=list)
    broken_snapshots: list[str] = field(default_factory=list)
    regroup: int = 0

    def lines(self) -> list[str]:
        """What the job prints."""
        rows = ", ".join(f"{t} {n}" for t, n in self.rows.items() if n)
        files = sum(self.files_deleted.values())
        out = [
            f"erase {self.run_id}: {self.assets} asset(s) and {self.videos} video(s) erased; "
            f"rows deleted: {rows or 'none'}; {files} data file(s) holding them deleted",
            f"  no longer reproducible: {len(self.broken_runs)} run(s), "
            f"{len(self.broken_snapshots)} snapshot(s)",
        ]
        out += [f"    run {r}" for r in self.broken_runs[:20]]
        out += [f"    snapshot {s}" for s in self.broken_snapshots]
        if self.regroup:
            out.append(
                f"  {self.regroup} asset(s) lost their duplicate group: run `smartray curate`"
            )
        return out


def closure(lake: Lake, ids: Sequence[str]) -> tuple[set[str], set[str]]:
    """The asset ids and video ids to erase: those named, frames, augmented descendants.

    Raises:
        ConfigError: an id is malformed or names no asset and no video.
    """
    bad = [i for i in ids if not _ID.match(i)]
    if bad:
        raise ConfigError(f"not an asset or video id (64 lowercase hex digits): {bad[:5]}")
    if not lake.exists(ASSETS.name):
        raise ConfigError(f"lake {lake.uri!r} has no assets: nothing to erase")
    assets = lake.table(ASSETS.name, columns=["asset_id", "video_id", "parent_id"])
    all_ids = set(assets.column("asset_id").to_pylist())
    videos = set()
    if lake.exists(VIDEOS.name):
        videos = set(lake.table(VIDEOS.name, columns=["video_id"]).column("video_id").to_pylist())
    unknown = sorted(set(ids) - all_ids - videos)
    if unknown:
        raise ConfigError(
            f"unknown id(s), in neither assets nor videos: {', '.join(unknown[:10])}"
            + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            + "; nothing erased"
        )
    erased_videos = set(ids) & videos
    erased = set(ids) & all_ids
    children: dict[str, list[str]] = defaultdict(list)
    for aid, vid, parent in zip(
        assets.column("asset_id").to_pylist(),
        assets.column("video_id").to_pylist(),
        assets.column("parent_id").to_pylist(),
        strict=True,
    ):
        if vid in erased_videos:
            erased.add(aid)
        if parent is not None:
            children[parent].append(aid)
    todo = list(erased)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in erased:
                erased.add(child)
                todo.append(child)
    return erased, erased_videos


def read_ids_file(path: str) -> list[str]:
    """The ids in a text file (one per line; blank lines and `#` comments skipped).

    Raises:
        ConfigError: the file cannot be read.
    """
    try:
        fs, inner = pafs.FileSystem.from_uri(path if "://" in path else os.path.abspath(path))
        with fs.open_input_stream(inner) as f:
            text = f.read().decode("utf-8")
    except (OSError, pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise ConfigError(f"--ids-file {path!r}: cannot read it ({e})") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def _in(column: str, values: set[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in sorted(values))})"


def erase(
    ids: Sequence[str],
    *,
    lake: str | None = None,
    orphan_grace_minutes: float = logfiles.ORPHAN_GRACE_MINUTES,
) -> EraseResult:
    """Erases `ids` (asset or video ids) and what derives from them, bytes included.

    Args:
        ids: Asset or video ids.
        lake: The lake root.
        orphan_grace_minutes: A file no commit ever added that holds an erased id is
            deleted once older than this (younger: it may be an in-flight job's part).

    Raises:
        ConfigError: no ids, or an unknown or malformed one; nothing is written then.
    """
    if not ids:
        raise ConfigError("give at least one asset or video id")
    lk = Lake(lake)
    location = lk.location
    erased, videos = closure(lk, ids)
    targets = erased | videos
    digest = hashlib.sha256("\n".join(sorted(targets)).encode()).hexdigest()
    session = lk.session("erase", {"ids": len(ids), "erased": len(targets), "ids_sha256": digest})
    run = session.run
    pinned = pins(location)
    rows: dict[str, int] = {}
    files_deleted: dict[str, int] = {}
    gone_files: dict[str, set[str]] = {}
    regroup = 0
    for spec in ALL_TABLES.values():
        cols = [c for c in ID_COLUMNS if c in spec.schema.names]
        if not cols or not lk.exists(spec.name):
            continue
        match = dict.fromkeys(cols, targets)
        if spec is DUP_GROUPS:
            groups = _groups_of(lk, erased)
            if groups:
                regroup = len(_grouped(lk, groups) - erased)
                match["dup_group"] = groups
        rewrite, look = _dropping(match), list(match)
        if spec is SPLITS:  # in the same rewrite: no file in between still names them
            rewrite = _then(rewrite, _blanking("group_key", targets))
            look.append("group_key")
            cols = [*cols, "group_key"]
        before = session.latest_version(spec)
        res = session.commit(spec, mode="rewrite", columns=look, rewrite=rewrite)
        rows[spec.name] = res.rows_written
        if res.version == before:  # nothing deleted: the run pins no version of it
            run.output_versions.pop(spec.name, None)
        gone = _delete_files_holding(session, spec, cols, targets, orphan_grace_minutes)
        files_deleted[spec.name] = len(gone)
        gone_files[spec.name] = gone
    broken_runs, broken_snaps = _broken(session, pinned, gone_files)
    for spec, key, names in ((RUNS, "run_id", broken_runs), (SNAPSHOTS, "snapshot", broken_snaps)):
        if names:
            session.commit(spec, mode="where", predicate=_in(key, set(names)),
                           set_values={"broken_by": run.run_id})  # fmt: skip
    run.counts = {"assets": len(erased), "videos": len(videos),
                  "files_deleted": sum(files_deleted.values()),
                  "broken_runs": len(broken_runs), "broken_snapshots": len(broken_snaps),
                  **{f"rows_{t}": n for t, n in rows.items()}}  # fmt: skip
    # the run's own row: after its updates of `runs`, as a later transaction of this run
    session.record()
    for name in gone_files:  # ids out of the log, old statistics included
        if lk.exists(name) and logfiles.scrub_log(location, name, targets).checkpoints:
            session.checkpoint(spec_for(name))
    return EraseResult(run.run_id, len(erased), len(videos), rows, files_deleted,
                       broken_runs, broken_snaps, regroup)  # fmt: skip


def _groups_of(lk: Lake, erased: set[str]) -> set[str]:
    table = lk.table(DUP_GROUPS.name, columns=["asset_id", "dup_group"])
    mask = pc.is_in(_plain(table.column("asset_id")), value_set=_array(erased))
    return set(table.filter(mask).column("dup_group").to_pylist())


def _grouped(lk: Lake, groups: set[str]) -> set[str]:
    table = lk.table(DUP_GROUPS.name, columns=["asset_id", "dup_group"])
    mask = pc.is_in(_plain(table.column("dup_group")), value_set=_array(groups))
    return set(table.filter(mask).column("asset_id").to_pylist())


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Strings as plain `string` (Delta reads may hand back `string_view`)."""
    return column if column.type == pa.string() else pc.cast(column, pa.string())


def _array(values: set[str]) -> pa.Array:
    return pa.array(sorted(values), pa.string())


def _dropping(match: dict[str, set[str]]) -> Rewrite:
    """A rewrite that drops the rows whose column values are in `match`."""

    def rewrite(table: pa.Table) -> tuple[pa.Table, int]:
        hit = None
        for col, values in match.items():
            if col in table.column_names:
                h = pc.fill_null(
                    pc.is_in(_plain(table.column(col)), value_set=_array(values)), False
                )
                hit = h if hit is None else pc.or_(hit, h)
        if hit is None:
            return table, 0
        kept = table.filter(pc.invert(hit))
        return kept, table.num_rows - kept.num_rows

    return rewrite


def _then(first: Rewrite, second: Rewrite) -> Rewrite:
    """`first`, then `second` on what it kept; the rows either changed, counted once each."""

    def rewrite(table: pa.Table) -> tuple[pa.Table, int]:
        kept, deleted = first(table)
        out, blanked = second(kept)
        return out, deleted + blanked

    return rewrite


def _blanking(column: str, values: set[str]) -> Rewrite:
    """A rewrite that sets `column` to "" where it holds one of `values`."""

    def rewrite(table: pa.Table) -> tuple[pa.Table, int]:
        col = _plain(table.column(column))
        hit = pc.fill_null(pc.is_in(col, value_set=_array(values)), False)
        n = pc.sum(hit).as_py() or 0
        if not n:
            return table, 0
        blank = pc.if_else(hit, pa.scalar("", pa.string()), col)
        return table.set_column(table.schema.get_field_index(column), column, blank), n

    return rewrite


def _delete_files_holding(
    session: LakeSession,
    spec: TableSpec,
    cols: list[str],
    targets: set[str],
    orphan_grace_minutes: float,
) -> set[str]:
    """Deletes the table's Parquet files that hold any of `targets` and no new version reads.

    Those are the files a commit once added that the latest version no longer
    references (the files the delete just replaced, and older ones replaced by a
    compaction that vacuum has not deleted yet), and files no commit ever added (a
    killed job's parts) older than `orphan_grace_minutes`. A younger uncommitted file
    may be the part of a job still running: deleting it would leave that job's commit
    pointing at a missing file, so it stays (`maintain` deletes it once it is old).

    Returns:
        Their paths relative to the table.
    """
    fs, _ = session.location.filesystem()
    found = logfiles.data_files(session.location, spec.name)  # listed before the log is read
    version = session.latest_version(spec)
    live_rel = session.files(spec, version)
    logged = logfiles.logged_files(session.location, spec.name, upto=version)
    old = {
        f.path
        for f in logfiles.orphans(session.location, spec.name, grace_minutes=orphan_grace_minutes)
    }
    value_set = _array(targets)
    gone: set[str] = set()
    for f in found:
        if f.path in live_rel or (f.path not in logged and f.path not in old):
            continue
        have = set(pq.read_schema(f.full, filesystem=fs).names)
        read = [c for c in cols if c in have]
        if not read:
            continue
        table = pq.read_table(f.full, columns=read, filesystem=fs)
        held = (pc.is_in(_plain(table.column(c)), value_set=value_set) for c in read)
        if any(pc.any(h).as_py() for h in held):
            fs.delete_file(f.full)
            gone.add(f.path)
    if gone:
        log.info("table %s: deleted %d file(s) holding erased rows", spec.name, len(gone))
    return gone


def _broken(
    session: LakeSession, pinned: list[Pin], gone: dict[str, set[str]]
) -> tuple[list[str], list[str]]:
    """Runs and snapshots that pinned a table version which referenced a deleted file."""
    cache: dict[tuple[str, int], bool] = {}

    def lost(table: str, version: int) -> bool:
        if not gone.get(table):
            return False
        key = (table, version)
        if key not in cache:
            try:
                files = session.files(spec_for(table), version)
                cache[key] = bool(files & gone[table])
            except Exception:  # the version's log is gone: it cannot be read anyway
                cache[key] = True
        return cache[key]

    runs: set[str] = set()
    snaps: set[str] = set()
    for pin in pinned:
        if lost(pin.table, pin.version):
            kind, _, name = pin.by.partition(" ")
            (runs if kind == "run" else snaps).add(name)
    return sorted(runs), sorted(snaps)
