"""`smartray.Lake`: the lake's tables, plus what the stages store in them (snapshots).

`smartray.tables.Lake` reads tables and knows no stage; this one adds the reads that need
a stage's knowledge, so that `from smartray import Lake` is all a notebook needs.
"""

from __future__ import annotations

from typing import Any, get_args

from smartray import tables
from smartray.errors import ConfigError
from smartray.sample.snapshots import read_snapshot
from smartray.tables.lake import Kind


class Lake(tables.Lake):
    """A lake of Delta tables under one root, with its named snapshots.

    Example:
        >>> lake = Lake("./lake")
        >>> lake.table("assets", columns=["asset_id", "width"], to="polars")
        >>> lake.snapshot("night-500", columns=["asset_id", "blur"], to="polars")

    Args:
        uri: Local folder or `s3://bucket/prefix`; default env `SMARTRAY_LAKE` or `./lake`.
        storage_options: Extra deltalake storage options (endpoint, region).
    """

    def snapshot(self, name: str, *, columns: list[str] | None = None, to: Kind = "arrow") -> Any:
        """The assets of snapshot `name`, read from the `assets` version it was drawn from.

        Example:
            >>> Lake("./lake").snapshot("night-500", columns=["asset_id", "blur"], to="polars")

        Raises:
            ConfigError: no such snapshot, or an erasure broke it.
        """
        if to not in get_args(Kind):
            raise ConfigError(f"to={to!r}: choose one of {list(get_args(Kind))}")
        return read_snapshot(self, name, columns=columns, to=to)
