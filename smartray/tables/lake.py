"""`Lake`: the notebook and job API over the lake's tables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound

from smartray.errors import ConfigError, TableNotFoundError
from smartray.tables.catalog import ALL_TABLES, spec_for
from smartray.tables.commit import open_table
from smartray.tables.session import LakeSession
from smartray.tables.storage import LakeLocation

Kind = Literal["arrow", "polars", "pandas", "ray"]
_KINDS = ("arrow", "polars", "pandas", "ray")


@dataclass(frozen=True)
class TableInfo:
    """What `smartray tables` prints for one table."""

    name: str
    version: int
    rows: int
    bytes: int
    files: int


def _keep_assets(batch: pa.Table, *, wanted: pa.Array) -> pa.Table:
    """The rows of `batch` whose `asset_id` is in `wanted` (any string layout)."""
    import pyarrow.compute as pc

    ids = batch.column("asset_id").cast(pa.string())
    return batch.filter(pc.is_in(ids, value_set=wanted.cast(pa.string())))


class Lake:
    """A lake of Delta tables under one root.

    Example:
        >>> lake = Lake("./lake")
        >>> lake.table("assets", columns=["asset_id", "width"], to="polars")

    Args:
        uri: Local folder or `s3://bucket/prefix`; default env `SMARTRAY_LAKE` or `./lake`.
        storage_options: Extra deltalake storage options (endpoint, region).
    """

    def __init__(
        self,
        uri: str | os.PathLike[str] | None = None,
        storage_options: dict[str, str] | None = None,
    ):
        self.location = LakeLocation.from_uri(
            os.fspath(uri) if uri is not None else None, storage_options
        )

    @classmethod
    def at(cls, location: LakeLocation) -> Lake:
        """The lake at a resolved location (what Ray tasks are handed)."""
        return cls(location.root, location.storage_options)

    @property
    def uri(self) -> str:
        """The resolved lake root."""
        return self.location.root

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    def delta(self, name: str, version: int | None = None) -> DeltaTable:
        """The `DeltaTable` for `name` at `version` (latest if None), schema checked.

        Raises:
            TableNotFoundError: the table has not been written yet.
        """
        spec = spec_for(name)
        try:
            return open_table(self.location, spec, version, allow_missing_nullable=True)
        except DeltaTableNotFound:
            raise TableNotFoundError(
                f"table {name!r} does not exist under {self.uri!r} yet; run `smartray ingest` first"
            ) from None

    def dataset(self, name: str, version: int | None = None) -> pads.Dataset:
        """Table `name` at `version` (latest if None) as a pyarrow dataset, schema checked."""
        return self.delta(name, version).to_pyarrow_dataset()

    def exists(self, name: str) -> bool:
        """True if table `name` has been created."""
        return DeltaTable.is_deltatable(
            self.location.table_uri(name), storage_options=self.location.storage_options or None
        )

    def version(self, name: str) -> int | None:
        """The latest version of `name`, or None if it does not exist."""
        return self.delta(name).version() if self.exists(name) else None

    def table(
        self,
        name: str,
        version: int | None = None,
        *,
        columns: list[str] | None = None,
        to: Kind = "arrow",
    ) -> Any:
        """Reads table `name`, pinned to `version` if given.

        Args:
            name: A table name (`assets`, `asset_sources`, `quarantine`, `runs`, ...).
            version: Table version; None reads the latest.
            columns: Columns to read; None reads every column, image bytes included
                (`ASSETS.light_columns` lists all but the heavy ones).
            to: "arrow" (pyarrow.Table), "polars", "pandas" or "ray" (ray.data.Dataset).
        """
        if to not in _KINDS:
            raise ConfigError(f"to={to!r}: choose one of {list(_KINDS)}")
        dt = self.delta(name, version)
        if to == "ray":
            return self.read_ray(name, dt.version(), columns=columns)
        data: pa.Table = dt.to_pyarrow_dataset().to_table(columns=columns)
        if to == "arrow":
            return data
        if to == "polars":
            import polars as pl

            return pl.from_arrow(data)
        return data.to_pandas()

    def files(self, name: str, version: int) -> list[str]:
        """The data files of `name` at `version`: paths inside `location.filesystem()`."""
        return [uri.removeprefix("s3://") for uri in self.delta(name, version).file_uris()]

    def read_ray(
        self,
        name: str,
        version: int,
        *,
        columns: list[str] | None = None,
        asset_ids: list[str] | None = None,
    ) -> Any:
        """Table `name` at `version` as a Ray dataset, optionally only some assets' rows."""
        import ray.data

        ds = ray.data.read_delta(
            self.location.table_uri(name),
            version=version,
            columns=columns,
            storage_options=self.location.storage_options or None,
        )
        if asset_ids is None:
            return ds
        return ds.map_batches(
            _keep_assets, batch_format="pyarrow", fn_kwargs={"wanted": pa.array(asset_ids)}
        )

    def session(self, job: str, config: dict[str, Any] | None = None) -> LakeSession:
        """Opens a run: pinned reads, exactly-once commits and one `runs` row.

        Example:
            >>> with Lake("./lake").session("split", {"name": "main"}) as s:
            ...     s.commit(SPLITS, rows, mode="upsert")
        """
        return LakeSession(self.location, job, config)

    def describe(self) -> list[TableInfo]:
        """Version, rows, bytes and files of each existing table, from the log alone."""
        out = []
        for name in ALL_TABLES:
            if not self.exists(name):
                continue
            dt = self.delta(name)
            actions = pa.table(dt.get_add_actions(flatten=True))
            rows = (
                sum(v or 0 for v in actions.column("num_records").to_pylist())
                if actions.num_rows
                else 0
            )
            size = sum(actions.column("size_bytes").to_pylist()) if actions.num_rows else 0
            out.append(TableInfo(name, dt.version(), int(rows), int(size), actions.num_rows))
        return out
