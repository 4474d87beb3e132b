"""`LakeSession`: one job run's handle on the lake.

A job opens one session at its start (`Lake(uri).session("curate", config)`) and does all
its lake work through it:

- **reads are pinned**: the first read of a table pins the version it found, and every
  later read of that table in the run sees that version (or, once the run has committed
  to the table, the version its own last commit made); the pinned versions are recorded
  in the run's `runs` row as `input_versions`;
- **commits are exactly once**: `commit(SPEC, ..., mode=...)` carries the run id as the
  app transaction with a per-table sequence number, and the run's commit metadata, so a
  run that commits to one table twice never has its second commit taken for a replay;
  `output_versions` records what each commit made;
- **one `runs` row**: `record()` writes it (leaving the `with` block without an error
  does so too); a run that fails before then records nothing.

Stages never open a `DeltaTable` or call a commit function themselves: this module and
`Lake` are the only ways into the tables.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal

import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import CommitProperties, DeltaTable, PostCommitHookProperties

from smartray.errors import ConfigError, TableNotFoundError
from smartray.tables import commit as _commit
from smartray.tables.catalog import RUNS
from smartray.tables.commit import CommitResult
from smartray.tables.parts import PartFile
from smartray.tables.runs import Run
from smartray.tables.spec import TableSpec
from smartray.tables.storage import LakeLocation

log = logging.getLogger(__name__)

Mode = Literal["append", "upsert", "replace", "where", "parts", "rewrite"]
MODES: tuple[str, ...] = ("append", "upsert", "replace", "where", "parts", "rewrite")
# Upkeep commits never run the post-commit hooks: delta-rs cleans up expired logs whenever
# its hook writes a checkpoint, and pinned versions need their commits to be read.
_NO_HOOKS = PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)


class LakeSession:
    """The lake as one run sees it: pinned reads, exactly-once commits, one `runs` row.

    Example:
        >>> with Lake("./lake").session("split", config={"name": "main"}) as s:
        ...     assets = s.read(ASSETS, columns=["asset_id"])
        ...     s.commit(SPLITS, rows, mode="upsert")

    Args:
        location: The lake.
        job: Job name for the run id and the `runs` row.
        config: The run's settings, without secrets.
    """

    def __init__(self, location: LakeLocation, job: str, config: dict[str, Any] | None = None):
        self.location = location
        self.run = Run(job, dict(config or {}))
        self._current: dict[str, int] = {}  # version each read of a table sees
        self._txn: dict[str, int] = {}  # app-transaction sequence per table
        self._recorded: CommitResult | None = None
        self._discarded = False

    # -- identity -----------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        """The run's id: names its part files and app transactions."""
        return self.run.run_id

    @property
    def counts(self) -> dict[str, int]:
        """Named counts for the `runs` row and the job's summary."""
        return self.run.counts

    def __repr__(self) -> str:
        return f"LakeSession({self.run_id!r}, {self.location.root!r})"

    def __enter__(self) -> LakeSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._recorded is None and not self._discarded:
            self.record()

    # -- reading ------------------------------------------------------------------------

    def exists(self, spec: TableSpec) -> bool:
        """True if the table has been created."""
        return DeltaTable.is_deltatable(
            self.location.table_uri(spec.name),
            storage_options=self.location.storage_options or None,
        )

    def pin(self, spec: TableSpec, version: int | None = None) -> int | None:
        """Pins the table's version for this run's reads and returns it.

        Args:
            spec: The table.
            version: The version to pin; None pins the latest (or what is pinned already).

        Returns:
            The version, or None if the table does not exist yet.
        """
        if version is None and spec.name in self._current:
            return self._current[spec.name]
        if not self.exists(spec):
            if version is not None:
                raise TableNotFoundError(
                    f"table {spec.name!r} does not exist under {self.location.root!r}"
                )
            return None
        found = self._open(spec, version).version()
        if spec is not RUNS:  # reading the run log pins nothing worth keeping
            self.run.input_versions.setdefault(spec.name, found)
        if version is not None:  # a read of an older version does not move the run's pin
            return found
        return self._current.setdefault(spec.name, found)

    def version(self, spec: TableSpec) -> int | None:
        """The version this run reads of the table (pinning it now), or None if absent."""
        return self.pin(spec)

    def table(self, spec: TableSpec, version: int | None = None) -> DeltaTable:
        """The table at the run's version (or `version`), its stored schema checked.

        For Delta operations that are not reads or commits (history, file lists).

        Raises:
            TableNotFoundError: the table does not exist.
        """
        found = self.pin(spec, version)
        if found is None:
            raise TableNotFoundError(
                f"table {spec.name!r} does not exist under {self.location.root!r} yet"
            )
        return self._open(spec, found)

    def dataset(self, spec: TableSpec, version: int | None = None) -> pads.Dataset:
        """The table at the run's version (or `version`) as a pyarrow dataset (streams)."""
        return self.table(spec, version).to_pyarrow_dataset()

    def stored_columns(self, spec: TableSpec, version: int | None = None) -> list[str]:
        """The columns the table has at the run's version ([] if it does not exist)."""
        if self.pin(spec, version) is None:
            return []
        return list(pa.schema(self.table(spec, version).schema().to_arrow()).names)

    def read(
        self,
        spec: TableSpec,
        *,
        columns: Sequence[str] | None = None,
        filter: pads.Expression | None = None,
        version: int | None = None,
        missing_ok: bool = False,
    ) -> pa.Table:
        """Rows of the table at the run's version (or `version`).

        Args:
            spec: The table.
            columns: Columns to read (None: all, image bytes included).
            filter: A pyarrow dataset filter (use `tables.filters.text` on strings).
            version: Read this version instead of the run's.
            missing_ok: An absent table reads as no rows (else `TableNotFoundError`).
        """
        if missing_ok and self.pin(spec, version) is None:
            names = list(columns) if columns is not None else spec.schema.names
            return spec.schema.empty_table().select(names)
        cols = None if columns is None else list(columns)
        return self.dataset(spec, version).to_table(columns=cols, filter=filter)

    def keys(self, spec: TableSpec) -> pa.Array:
        """The key strings of every row at the run's version (only key columns are read)."""
        if self.pin(spec) is None:
            return pa.array([], pa.string())
        return _commit.existing_keys(self.table(spec), spec)

    def files(self, spec: TableSpec, version: int | None = None) -> set[str]:
        """The data files of a version (default: the latest), relative to the table root.

        Not pinned: this lists what a version references, for upkeep.
        """
        dt = DeltaTable(
            self.location.table_uri(spec.name),
            version=version,
            storage_options=self.location.storage_options or None,
        )
        return {u.rsplit(f"/{spec.name}/", 1)[-1] for u in dt.file_uris()}

    # -- writing ------------------------------------------------------------------------

    def ensure(self, spec: TableSpec) -> int:
        """Creates the table empty if it does not exist yet; returns its latest version."""
        return _commit.ensure_table(self.location, spec).version()

    def commit(
        self,
        spec: TableSpec,
        rows: pa.Table | None = None,
        *,
        mode: Mode = "append",
        parts: Sequence[PartFile] = (),
        predicate: str | None = None,
        set_values: dict[str, Any] | None = None,
        columns: Sequence[str] = (),
        rewrite: _commit.Rewrite | None = None,
    ) -> CommitResult:
        """Commits to a table exactly once, as this run.

        Args:
            spec: The table; rows are cast to its schema.
            rows: The rows (`append`, `upsert`, `replace`).
            mode: `append` adds rows whose key is new; `upsert` inserts new keys and
                replaces rows whose key is there; `replace` replaces the whole table;
                `where` deletes the rows matching `predicate`, or sets `set_values` in
                them; `parts` commits Parquet parts workers wrote into the table folder;
                `rewrite` rewrites the files whose rows `rewrite` changes, recording no
                predicate in the log (erasure).
            parts: The part files (`parts`).
            predicate: A SQL predicate (`where`).
            set_values: Column -> SQL value to set (`where`); None deletes.
            columns: The columns `rewrite` looks at (`rewrite`).
            rewrite: Rows -> (rows kept, rows deleted or changed) (`rewrite`).

        Returns:
            What the commit did; the run's `output_versions` notes its version.
        """
        txn = self._next_txn(spec)
        common: dict[str, Any] = {
            "app_id": self.run_id,
            "metadata": self.run.commit_metadata(),
            "txn_version": txn,
        }
        if mode in ("append", "upsert", "replace"):
            if rows is None:
                raise ConfigError(f"commit to {spec.name!r}: mode {mode!r} needs rows")
            fn = {
                "append": _commit.commit_rows,
                "upsert": _commit.commit_upsert,
                "replace": _commit.commit_replace,
            }[mode]
            result = fn(self.location, spec, rows, **common)
        elif mode == "where":
            if predicate is None:
                raise ConfigError(f"commit to {spec.name!r}: mode 'where' needs a predicate")
            result = _commit.commit_where(
                self.location, spec, predicate, set_values=set_values, **common
            )
        elif mode == "parts":
            result = _commit.commit_parts(self.location, spec, parts, **common)
        elif mode == "rewrite":
            if rewrite is None or not columns:
                raise ConfigError(f"commit to {spec.name!r}: mode 'rewrite' needs columns, rewrite")
            result = _commit.commit_rewrite(
                self.location, spec, columns=columns, rewrite=rewrite, **common
            )
        else:
            raise ConfigError(f"commit mode {mode!r}: choose one of {', '.join(MODES)}")
        return self.output(result)

    def output(self, result: CommitResult) -> CommitResult:
        """Notes a commit's version: later reads of that table in this run see it."""
        self.run.output(result)
        self._current[result.table] = result.version
        return result

    def _next_txn(self, spec: TableSpec) -> int:
        self._txn[spec.name] = self._txn.get(spec.name, 0) + 1
        return self._txn[spec.name]

    # -- upkeep (maintain) --------------------------------------------------------------

    def compact(self, spec: TableSpec, *, target_size: int) -> tuple[int, int]:
        """Rewrites the table's small files into files of about `target_size` bytes.

        Returns:
            Files removed and files added.
        """
        metrics = self._latest(spec).optimize.compact(
            target_size=target_size,
            commit_properties=self._props(),
            post_commithook_properties=_NO_HOOKS,
        )
        return int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])

    def vacuum(self, spec: TableSpec, *, retention_hours: int, dry_run: bool) -> list[str]:
        """Deletes files removed from the table before the retention; returns their paths."""
        deleted: list[str] = self._latest(spec).vacuum(
            retention_hours=retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=False,
            commit_properties=self._props(),
            post_commithook_properties=_NO_HOOKS,
        )
        return deleted

    def checkpoint(self, spec: TableSpec) -> None:
        """Writes a checkpoint of the table's latest version."""
        self._latest(spec).create_checkpoint()

    def latest_version(self, spec: TableSpec) -> int:
        """The table's latest version now (not pinned)."""
        return self._latest(spec).version()

    def file_count(self, spec: TableSpec) -> int:
        """Data files of the table's latest version."""
        return int(pa.table(self._latest(spec).get_add_actions(flatten=False)).num_rows)

    def commit_time_ms(self, spec: TableSpec, version: int) -> int | None:
        """When `version` was committed (ms since the epoch), or None if the log lacks it."""
        dt = self._latest(spec)
        latest = dt.version()
        if not 0 <= version <= latest:
            return None
        for entry in dt.history(limit=latest - version + 1):
            if entry.get("version") == version and entry.get("timestamp") is not None:
                return int(entry["timestamp"])
        return None

    def _props(self) -> CommitProperties:
        return CommitProperties(custom_metadata=self.run.commit_metadata())

    def _latest(self, spec: TableSpec) -> DeltaTable:
        return DeltaTable(
            self.location.table_uri(spec.name),
            storage_options=self.location.storage_options or None,
        )

    # -- the run's row ------------------------------------------------------------------

    def record(self, status: str = "succeeded") -> CommitResult:
        """Writes the run's `runs` row, once; later calls return the first result."""
        if self._recorded is None:
            self._recorded = self.run.record(
                self.location, status, txn_version=self._next_txn(RUNS)
            )
        return self._recorded

    def discard(self) -> None:
        """The run writes no `runs` row (a dry run that wrote nothing)."""
        self._discarded = True

    def _open(self, spec: TableSpec, version: int | None) -> DeltaTable:
        return _commit.open_table(self.location, spec, version, allow_missing_nullable=True)
