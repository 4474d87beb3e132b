"""Exactly-once commits to lake tables (DESIGN.md, "Writing exactly once").

Each commit:
1. loads the table and returns at once if its app transaction `(app_id, version)` is
   already recorded (a retried driver commits nothing twice);
2. anti-joins the new rows against the key column(s) only, never the image bytes;
3. commits once on that same table object with the app transaction and run metadata and
   no automatic rebase; a `CommitFailedError` (someone else committed first) reloads and
   plans again, with backoff, a bounded number of times.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import (
    CommitProperties,
    DeltaTable,
    PostCommitHookProperties,
    Transaction,
    write_deltalake,
)
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction

from smartray.errors import CommitError, SchemaMismatchError
from smartray.tables.parts import PartFile, write_parquet
from smartray.tables.spec import TableSpec, check_stored_schema
from smartray.tables.storage import LakeLocation

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
_BACKOFF_S = 0.2


@dataclass(frozen=True)
class CommitResult:
    """What one commit did.

    Attributes:
        table: Table name.
        version: The table's version after the commit (or as found, if nothing was new).
        rows_written: Rows added by this commit.
        rows_skipped: Rows whose key was already in the table or repeated in the input.
        already_committed: The app transaction was found: an earlier try committed it.
    """

    table: str
    version: int
    rows_written: int
    rows_skipped: int
    already_committed: bool = False


def open_table(
    location: LakeLocation,
    spec: TableSpec,
    version: int | None = None,
    *,
    allow_missing_nullable: bool = False,
) -> DeltaTable:
    """Loads a table and checks its stored schema against the spec.

    Readers pass `allow_missing_nullable` to accept a table (or an old version) that
    predates a nullable column of the spec; writers open with `ensure_table`, which adds it.

    Raises:
        deltalake.exceptions.TableNotFoundError: the table does not exist.
        SchemaMismatchError: the stored schema differs from the spec.
    """
    uri = location.table_uri(spec.name)
    dt = DeltaTable(uri, version=version, storage_options=location.storage_options or None)
    check_stored_schema(
        spec, pa.schema(dt.schema().to_arrow()), uri, allow_missing_nullable=allow_missing_nullable
    )
    return dt


def ensure_table(location: LakeLocation, spec: TableSpec) -> DeltaTable:
    """Opens the table, creating it empty (version 0) if it does not exist yet.

    A table written before the spec gained nullable columns gets them added (a
    metadata-only commit; old rows read them as null).
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            dt = open_table(location, spec)
            if _upgrade_properties(dt, spec):
                return dt
            _sleep(attempt)
            continue
        except TableNotFoundError:
            pass
        except SchemaMismatchError:
            if not _add_new_columns(location, spec):
                raise
            continue
        try:
            return DeltaTable.create(
                location.table_uri(spec.name),
                schema=spec.schema,
                partition_by=list(spec.partition_by) or None,
                mode="ignore",
                name=spec.name,
                description=spec.description,
                # Log files stay: deltalake's post-commit hook otherwise deletes those older
                # than 30 days, and with them time travel to versions runs have pinned.
                # Per-file statistics leave string columns out: ids in them would outlive
                # an erasure in the log (`TableSpec.stats_columns`).
                configuration={
                    "delta.enableExpiredLogCleanup": "false",
                    **spec.table_configuration,
                },
                storage_options=location.storage_options or None,
            )
        except CommitFailedError:  # another job created it at the same moment
            _sleep(attempt)
    raise CommitError(f"table {spec.name!r} at {location.root!r}: could not be created")


def _upgrade_properties(dt: DeltaTable, spec: TableSpec) -> bool:
    """Gives a table created before them the properties a new one gets; False on conflict.

    A table created before statistics left string columns out gets
    `delta.dataSkippingStatsColumns` (one metadata commit), so its later commits record
    no ids; `erase` takes the ids out of what it recorded before.
    """
    wanted = spec.table_configuration
    have = dt.metadata().configuration
    if all(have.get(k) is not None for k in wanted):
        return True
    try:
        dt.alter.set_table_properties(
            wanted,
            raise_if_not_exists=False,
            post_commithook_properties=PostCommitHookProperties(
                create_checkpoint=False, cleanup_expired_logs=False
            ),
        )
    except CommitFailedError:
        return False  # another writer committed (or upgraded it) first: open again
    log.info("table %s: set %s", spec.name, ", ".join(f"{k}={v}" for k, v in wanted.items()))
    return True


def _add_new_columns(location: LakeLocation, spec: TableSpec) -> bool:
    """Adds the spec's nullable columns the stored table lacks.

    Returns False if that is not all that differs (the mismatch is then an error).
    """
    from deltalake import Field as DeltaField

    dt = DeltaTable(location.table_uri(spec.name), storage_options=location.storage_options or None)
    stored = set(pa.schema(dt.schema().to_arrow()).names)
    missing = [f for f in spec.schema if f.name not in stored]
    if not missing or any(not f.nullable for f in missing):
        return False
    try:
        dt.alter.add_columns([DeltaField.from_arrow(f) for f in missing])
    except CommitFailedError:
        return True  # another job added them first: open again
    log.info("table %s: added columns %s", spec.name, ", ".join(f.name for f in missing))
    return True


def existing_keys(dt: DeltaTable, spec: TableSpec) -> pa.Array:
    """The key strings of every row of `dt`, reading only the key column(s)."""
    keys = dt.to_pyarrow_dataset().to_table(columns=list(spec.key))
    return spec.key_strings(keys)


def commit_rows(
    location: LakeLocation,
    spec: TableSpec,
    rows: pa.Table,
    *,
    app_id: str,
    metadata: dict[str, Any] | None = None,
    txn_version: int = 1,
) -> CommitResult:
    """Appends the rows whose key is not in the table yet, exactly once.

    Args:
        location: The lake.
        spec: The table; rows are cast to its schema first.
        rows: New rows (small tables: sources, quarantine, runs).
        app_id: Identifies this write (the run id); a second call with the same app id and
            version commits nothing.
        metadata: Run metadata for the commit info.
        txn_version: Version of the app transaction.
    """
    cast = spec.cast(rows)
    n_in = cast.num_rows
    data = _dedupe(spec, cast)

    def plan_and_commit(dt: DeltaTable, props: CommitProperties) -> tuple[int, int]:
        new = data
        if data.num_rows and dt.version() > 0:
            have = existing_keys(dt, spec)
            new = data.filter(pc.invert(pc.is_in(spec.key_strings(data), value_set=have)))
        if new.num_rows:
            write_deltalake(dt, new, mode="append", commit_properties=props)
        return new.num_rows, n_in - new.num_rows

    return _commit_loop(location, spec, app_id, txn_version, metadata, plan_and_commit)


def commit_upsert(
    location: LakeLocation,
    spec: TableSpec,
    rows: pa.Table,
    *,
    app_id: str,
    metadata: dict[str, Any] | None = None,
    txn_version: int = 1,
) -> CommitResult:
    """Inserts rows with new keys and replaces rows whose key is there, exactly once.

    A `MERGE ... WHEN MATCHED UPDATE ... WHEN NOT MATCHED INSERT` on the key: only the
    files holding matched keys are rewritten. Two upserts of the same keys at once
    conflict; the loser reloads and merges again.

    Returns:
        A result whose `rows_written` counts inserted plus updated rows.
    """
    data = _dedupe(spec, spec.cast(rows))
    on = " AND ".join(f"t.{k} = s.{k}" for k in spec.key)

    def plan_and_commit(dt: DeltaTable, props: CommitProperties) -> tuple[int, int]:
        if not data.num_rows:
            return 0, 0
        metrics = (
            dt.merge(data, on, source_alias="s", target_alias="t", commit_properties=props)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
        changed = int(metrics.get("num_target_rows_inserted", 0)) + int(
            metrics.get("num_target_rows_updated", 0)
        )
        return changed, data.num_rows - changed

    return _commit_loop(location, spec, app_id, txn_version, metadata, plan_and_commit)


def commit_where(
    location: LakeLocation,
    spec: TableSpec,
    predicate: str,
    *,
    set_values: dict[str, Any] | None = None,
    app_id: str,
    metadata: dict[str, Any] | None = None,
    txn_version: int = 1,
) -> CommitResult:
    """Deletes the rows matching a SQL `predicate`, or sets `set_values` in them; once.

    The files holding those rows are rewritten.

    Returns:
        A result whose `rows_written` counts the rows deleted or updated.
    """

    def plan_and_commit(dt: DeltaTable, props: CommitProperties) -> tuple[int, int]:
        if set_values is None:
            metrics = dt.delete(predicate, commit_properties=props)
            return int(metrics.get("num_deleted_rows", 0)), 0
        metrics = dt.update(new_values=set_values, predicate=predicate, commit_properties=props)
        return int(metrics.get("num_updated_rows", 0)), 0

    return _commit_loop(location, spec, app_id, txn_version, metadata, plan_and_commit)


Rewrite = Callable[[pa.Table], tuple[pa.Table, int]]


def commit_rewrite(
    location: LakeLocation,
    spec: TableSpec,
    *,
    columns: Sequence[str],
    rewrite: Rewrite,
    app_id: str,
    metadata: dict[str, Any] | None = None,
    txn_version: int = 1,
) -> CommitResult:
    """Rewrites the files whose rows `rewrite` changes, in one commit, exactly once.

    Unlike `commit_where`, the log records no predicate (deltalake writes a `DELETE`'s
    or `UPDATE`'s predicate into the commit info, values and all): an erasure must not
    leave the ids it erased in the log. Each changed file is removed and its rewritten
    rows, if any, added as a new file.

    Args:
        location: The lake.
        spec: The table (unpartitioned); rewritten rows are cast to its schema.
        columns: The columns `rewrite` looks at; only these are read to find the files.
        rewrite: Takes a file's rows (first only `columns`, then every column if it
            changed any) and returns the rows to keep, in the same columns, and how many
            rows it deleted or changed.
        app_id: Identifies this write (the run id), as for `commit_rows`.
        metadata: Run metadata for the commit info.
        txn_version: Version of the app transaction.

    Returns:
        A result whose `rows_written` counts the rows deleted or changed.
    """
    if spec.partition_by:
        raise SchemaMismatchError(f"table {spec.name!r} is partitioned; rewrites are not")
    fs, root = location.filesystem()
    base = f"{root}/{spec.name}"

    def plan_and_commit(dt: DeltaTable, props: CommitProperties) -> tuple[int, int]:
        actions: list[AddAction | RemoveAction] = []
        written: list[str] = []
        changed = 0
        now = int(time.time() * 1000)
        live = pa.table(dt.get_add_actions(flatten=True)).select(["path", "size_bytes"])
        stored = set(pa.schema(dt.schema().to_arrow()).names)
        probe = [c for c in columns if c in stored]
        for entry in live.to_pylist():
            path, size = entry["path"], entry["size_bytes"]
            have = set(pq.read_schema(f"{base}/{path}", filesystem=fs).names)
            cols = [c for c in probe if c in have]
            if not cols:
                continue
            probe_rows = pq.read_table(f"{base}/{path}", columns=cols, filesystem=fs)
            if not rewrite(_as_spec_types(spec, probe_rows))[1]:
                continue
            full = pq.read_table(f"{base}/{path}", filesystem=fs)
            kept, n = rewrite(spec.cast(_as_spec_types(spec, full)))
            changed += n
            actions.append(RemoveAction(path, True, now, size, {}))
            if kept.num_rows:
                rel = f"part-{app_id}-{uuid.uuid4().hex}.parquet"
                part = write_parquet(fs, base, spec, spec.cast(kept), rel)
                written.append(part.path)
                actions.append(_add(part, now))
        if not actions:
            return 0, 0
        try:
            dt.create_write_transaction(
                actions, mode="append", schema=spec.schema, commit_properties=props
            )
        except BaseException:
            for rel in written:  # never committed: nothing refers to them
                fs.delete_file(f"{base}/{rel}")
            raise
        return changed, 0

    return _commit_loop(location, spec, app_id, txn_version, metadata, plan_and_commit)


def commit_replace(
    location: LakeLocation,
    spec: TableSpec,
    rows: pa.Table,
    *,
    app_id: str,
    metadata: dict[str, Any] | None = None,
    txn_version: int = 1,
) -> CommitResult:
    """Replaces the whole table with `rows` in one commit, exactly once.

    For tables derived from a ledger; earlier versions stay readable until vacuumed.
    """
    data = _dedupe(spec, spec.cast(rows))

    def plan_and_commit(dt: DeltaTable, props: CommitProperties) -> tuple[int, int]:
        write_deltalake(dt, data, mode="overwrite", commit_properties=props)
        return data.num_rows, 0

    return _commit_loop(location, spec, app_id, txn_version, metadata, plan_and_commit)


def commit_parts(
    location: LakeLocation,
    spec: TableSpec,
    parts: Sequence[PartFile],
    *,
    app_id: str,
    metadata: dict[str, Any] | None = None,
    txn_version: int = 1,
) -> CommitResult:
    """Commits Parquet parts already written into the table folder, exactly once.

    Rows whose key is already in the table, or in an earlier part of this commit, are
    dropped: a part with such rows is rewritten without them, a part with only such rows
    is deleted. Only the key column of each part is read to decide this.
    """
    fs, root = location.filesystem()
    base = f"{root}/{spec.name}"
    total = sum(p.num_records for p in parts)
    # Parts are only written, never changed, until a commit lands: a part with rows the
    # table already has is copied without them, and whatever the final commit does not
    # reference is deleted afterwards. A retry after a conflict plans from the originals.
    written_files: set[str] = {p.path for p in parts}
    committed: list[str] = []

    def plan_and_commit(dt: DeltaTable, props: CommitProperties) -> tuple[int, int]:
        have = existing_keys(dt, spec) if dt.version() > 0 else pa.array([], pa.string())
        seen: set[str] = set(have.to_pylist())
        actions: list[AddAction | RemoveAction] = []
        kept_paths: list[str] = []
        written = 0
        for part in sorted(parts, key=lambda p: p.path):
            keys = spec.key_strings(
                pq.read_table(f"{base}/{part.path}", columns=list(spec.key), filesystem=fs)
            ).to_pylist()
            mask = [k not in seen for k in keys]
            seen.update(keys)
            kept = sum(mask)
            if kept == 0:
                continue
            final = part
            if kept < len(mask):
                table = pq.read_table(f"{base}/{part.path}", filesystem=fs).filter(pa.array(mask))
                rel = part.path.removesuffix(".parquet") + f"-{uuid.uuid4().hex[:8]}.parquet"
                final = write_parquet(fs, base, spec, spec.cast(table), rel)
                written_files.add(final.path)
            written += final.num_records
            kept_paths.append(final.path)
            actions.append(_add(final, int(time.time() * 1000)))
        if actions:
            dt.create_write_transaction(
                actions, mode="append", schema=spec.schema, commit_properties=props
            )
        committed[:] = kept_paths
        return written, total - written

    result = _commit_loop(location, spec, app_id, txn_version, metadata, plan_and_commit)
    if not result.already_committed:
        for rel in written_files - set(committed):
            fs.delete_file(f"{base}/{rel}")
    return result


def _commit_loop(
    location: LakeLocation,
    spec: TableSpec,
    app_id: str,
    txn_version: int,
    metadata: dict[str, Any] | None,
    plan_and_commit: Callable[[DeltaTable, CommitProperties], tuple[int, int]],
) -> CommitResult:
    props = CommitProperties(
        custom_metadata={"smartray.app_id": app_id, **(metadata or {})},
        app_transactions=[Transaction(app_id=app_id, version=txn_version)],
        max_commit_retries=0,  # no silent rebase: a conflict comes back here to re-plan
    )
    for attempt in range(MAX_ATTEMPTS):
        dt = ensure_table(location, spec)
        done = dt.transaction_version(app_id)
        if done is not None and done >= txn_version:
            log.info("table %s: app transaction %s already committed", spec.name, app_id)
            return CommitResult(spec.name, dt.version(), 0, 0, already_committed=True)
        before = dt.version()
        try:
            written, skipped = plan_and_commit(dt, props)
        except CommitFailedError as e:
            log.warning("table %s: commit conflict (%s), attempt %d", spec.name, e, attempt + 1)
            _sleep(attempt)
            continue
        dt.update_incremental()
        if written:
            log.info(
                "table %s: version %d -> %d, %d row(s)", spec.name, before, dt.version(), written
            )
        return CommitResult(spec.name, dt.version(), written, skipped)
    raise CommitError(
        f"table {spec.name!r}: commit of {app_id!r} still conflicted after {MAX_ATTEMPTS} "
        "attempts; nothing was committed, re-run the job"
    )


def _as_spec_types(spec: TableSpec, table: pa.Table) -> pa.Table:
    """`table`'s columns cast to the spec's types (a file may store `string_view`)."""
    for i, name in enumerate(table.column_names):
        want = spec.schema.field(name).type if name in spec.schema.names else None
        if want is not None and table.schema.field(i).type != want:
            table = table.set_column(i, name, pc.cast(table.column(i), want))
    return table


def _add(part: PartFile, now_ms: int) -> AddAction:
    """The Delta action that adds a part file written by this module."""
    return AddAction(
        path=part.path,
        size=part.size,
        partition_values={},
        modification_time=now_ms,
        data_change=True,
        stats=part.stats,
    )


def _dedupe(spec: TableSpec, table: pa.Table) -> pa.Table:
    """Keeps the first row of each key."""
    if table.num_rows < 2:
        return table
    keys = spec.key_strings(table).to_pylist()
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    if len(first) == len(keys):
        return table
    return table.take(pa.array(sorted(first.values()), pa.int64()))


def _sleep(attempt: int) -> None:
    time.sleep(_BACKOFF_S * (2**attempt) * (0.5 + random.random()))
