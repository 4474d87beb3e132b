"""The asset metadata view that filters, splits and samples work on.

One row per asset of `assets` at a pinned version: every light column (never the image
bytes), its near-duplicate group, and where it came from:

- `dup_group`: from `dup_groups` (null for assets `smartray curate` has not seen yet);
- `source_uri`: the first place it was found (a frame: its video's; an augmented
  child: its parent's);
- `source_folder`: the name of that place's folder (`.../cats/x.jpg` -> `cats`), the
  usual home of a class or a patient id in folder-organized data sets.

It lives with curate because it joins what curate and ingest wrote (`dup_groups`,
`asset_sources`); split, sample and export read it. `tables/` knows no such join.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from smartray.errors import ConfigError
from smartray.tables.catalog import ASSET_SOURCES, ASSETS, DUP_GROUPS
from smartray.tables.lake import Lake

DERIVED_COLUMNS = ("dup_group", "source_uri", "source_folder")


@dataclass(frozen=True)
class AssetView:
    """The view and the table versions it was read from."""

    table: pa.Table
    versions: dict[str, int]

    @property
    def columns(self) -> list[str]:
        """Its column names."""
        return list(self.table.column_names)


def asset_view(
    lake: Lake, assets_version: int | None = None, pins: dict[str, int | None] | None = None
) -> AssetView:
    """Reads the view; `assets` is pinned to `assets_version` (latest if None).

    `pins` fixes `dup_groups` and `asset_sources` too (a table pinned to None reads as
    absent); without it they are read at their latest versions.

    Raises:
        ConfigError: the lake has no assets yet.
    """
    if not lake.exists(ASSETS.name):
        raise ConfigError(f"lake {lake.uri!r} has no assets yet: run `smartray ingest` first")
    assets_dt = lake.delta(ASSETS.name, assets_version)
    versions = {"assets": assets_dt.version()}
    stored = set(pa.schema(assets_dt.schema().to_arrow()).names)
    cols = [c for c in ASSETS.light_columns if c in stored]
    table = assets_dt.to_pyarrow_dataset().to_table(columns=cols).sort_by("asset_id")
    for name in ASSETS.light_columns:  # columns that came after this version: null
        if name not in stored:
            table = table.append_column(
                name, pa.nulls(table.num_rows, ASSETS.schema.field(name).type)
            )
    table = table.select(ASSETS.light_columns)
    groups = pa.table(
        {"asset_id": pa.array([], pa.string()), "dup_group": pa.array([], pa.string())}
    )
    pins = pins or {}
    if _present(lake, DUP_GROUPS.name, pins):
        dt = lake.delta(DUP_GROUPS.name, pins.get(DUP_GROUPS.name))
        versions["dup_groups"] = dt.version()
        groups = dt.to_pyarrow_dataset().to_table(columns=["asset_id", "dup_group"])
    table = _left_join(table, groups, "asset_id")
    first = _first_sources(lake, versions, pins)
    src = _lookup(first, table.column("asset_id"))
    for link in ("video_id", "parent_id"):
        src = pc.coalesce(src, _lookup(first, table.column(link)))
    folder = [
        None if u is None else posixpath.basename(posixpath.dirname(u)) for u in src.to_pylist()
    ]
    table = table.append_column("source_uri", src).append_column(
        "source_folder", pa.array(folder, pa.string())
    )
    return AssetView(table.combine_chunks(), versions)


def _present(lake: Lake, name: str, pins: dict[str, int | None]) -> bool:
    """Whether table `name` is read: it exists and is not pinned to None (absent then)."""
    return lake.exists(name) and (name not in pins or pins[name] is not None)


def _first_sources(
    lake: Lake, versions: dict[str, int], pins: dict[str, int | None]
) -> dict[str, str]:
    if not _present(lake, ASSET_SOURCES.name, pins):
        return {}
    dt = lake.delta(ASSET_SOURCES.name, pins.get(ASSET_SOURCES.name))
    versions["asset_sources"] = dt.version()
    rows = dt.to_pyarrow_dataset().to_table(columns=["asset_id", "source_uri", "recorded_at"])
    rows = rows.sort_by([("asset_id", "ascending"), ("recorded_at", "ascending"),
                         ("source_uri", "ascending")])  # fmt: skip
    first: dict[str, str] = {}
    for aid, uri in zip(
        rows.column("asset_id").to_pylist(), rows.column("source_uri").to_pylist(), strict=True
    ):
        first.setdefault(aid, uri)
    return first


def _lookup(mapping: dict[str, str], keys: pa.ChunkedArray) -> pa.Array:
    return pa.array([None if k is None else mapping.get(k) for k in keys.to_pylist()], pa.string())


def _left_join(left: pa.Table, right: pa.Table, key: str) -> pa.Table:
    """`left` with `right`'s other columns, in `left`'s row order."""
    joined = left.join(right, key, join_type="left outer")
    return joined.sort_by(key).select(
        [*left.column_names, *(c for c in right.column_names if c != key)]
    )
