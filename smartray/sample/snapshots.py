"""Named snapshots: draw a sample of the asset view and pin it to an `assets` version.

`take_snapshot` filters the view (a SQL expression over its columns), draws with a
strategy and seed, and writes one `snapshots` row per member with the spec, the seed and
the `assets` version. `read_snapshot` reads those assets back from that very version,
so a snapshot reads back identically however the lake changes since (until an erasure
breaks it, which marks it).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smartray.curate.config import HASHES
from smartray.curate.lsh import signatures
from smartray.curate.view import AssetView, asset_view
from smartray.errors import ConfigError
from smartray.sample.strategies import (
    STRATEGIES,
    draw_balanced,
    draw_diverse,
    draw_random,
    draw_stratified,
)
from smartray.tables.catalog import ASSETS, SNAPSHOTS
from smartray.tables.filters import filter_table, text
from smartray.tables.lake import Kind, Lake


@dataclass
class SnapshotSummary:
    """What `smartray sample` did."""

    run_id: str
    name: str
    matched: int
    drawn: int
    assets_version: int
    by_value: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """The job's summary line."""
        spread = ""
        if self.by_value:
            spread = " (" + ", ".join(f"{k} {v}" for k, v in self.by_value.items()) + ")"
        return (
            f"sample {self.run_id}: snapshot {self.name!r}: {self.drawn} of {self.matched} "
            f"matching assets{spread}, pinned to assets v{self.assets_version}"
        )


def apply_filter(view: AssetView, where: str | None) -> pa.Table:
    """The view's rows matching `where`, a SQL expression (`blur > 100 AND width >= 640`).

    Raises:
        ConfigError: it does not parse, names an unknown column, or does not evaluate;
            the message names the valid columns.
    """
    return filter_table(view.table, where)


def draw(rows: pa.Table, strategy: str, n: int, seed: int, by: str | None) -> np.ndarray:
    """Row numbers of `rows` drawn by `strategy`, in draw order."""
    if strategy == "random":
        return draw_random(rows.num_rows, n, seed)
    if strategy == "diverse":
        sig = signatures(*(rows.column(h).to_numpy() for h in HASHES))
        return draw_diverse(sig, n, seed)
    assert by is not None
    values = rows.column(by).to_pylist()
    if strategy == "stratified":
        return draw_stratified(values, n, seed)
    return draw_balanced(values, n, seed)


def take_snapshot(
    name: str,
    *,
    strategy: str,
    n: int,
    lake: str | None = None,
    where: str | None = None,
    seed: int = 0,
    by: str | None = None,
) -> SnapshotSummary:
    """Draws and stores snapshot `name`.

    Raises:
        ConfigError: an unknown strategy or column, a filter that fails or matches
            nothing, or a name already taken. Nothing is written then.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    lk = Lake(lake)
    if name in snapshot_names(lk):
        raise ConfigError(f"snapshot {name!r} exists (snapshots never change); pick a new --name")
    view = asset_view(lk)
    if strategy in ("stratified", "balanced"):
        by = by or ("label" if "label" in view.columns else None)
        if by is None:
            raise ConfigError(f"--strategy {strategy} needs --by COLUMN; columns: {view.columns}")
    if by is not None and by not in view.columns:
        raise ConfigError(f"--by {by!r}: no such column; valid columns: {', '.join(view.columns)}")
    rows = apply_filter(view, where)
    if not rows.num_rows:
        raise ConfigError(f"--where {where!r} matches no asset; nothing written")
    picked = draw(rows, strategy, n, seed, by)
    spec = {"strategy": strategy, "n": n, "where": where, "by": by, "seed": seed}
    session = lk.session("sample", {"name": name, **spec})
    session.run.input_versions.update(view.versions)
    members = rows.take(pa.array(picked, pa.int64()))
    now = dt.datetime.now(dt.UTC)
    k = members.num_rows
    table = pa.table(
        {
            "snapshot": [name] * k,
            "asset_id": members.column("asset_id"),
            "rank": np.arange(k, dtype=np.int64),
            "strategy": [strategy] * k,
            "spec": [json.dumps(spec, sort_keys=True)] * k,
            "seed": [seed] * k,
            "assets_version": [view.versions["assets"]] * k,
            "run_id": [session.run_id] * k,
            "created_at": [now] * k,
        }
    )
    session.commit(SNAPSHOTS, table)
    session.counts.update({"matched": rows.num_rows, "drawn": k})
    session.record()
    spread: dict[str, int] = {}
    if by:
        for v in members.column(by).to_pylist():
            spread[str(v)] = spread.get(str(v), 0) + 1
    return SnapshotSummary(session.run_id, name, rows.num_rows, k, view.versions["assets"],
                           dict(sorted(spread.items())))  # fmt: skip


def snapshot_names(lake: Lake) -> list[str]:
    """The snapshots stored in the lake."""
    if not lake.exists(SNAPSHOTS.name):
        return []
    names = lake.delta(SNAPSHOTS.name).to_pyarrow_dataset().to_table(columns=["snapshot"])
    return sorted(set(names.column("snapshot").to_pylist()))


def snapshot_members(lake: Lake, name: str) -> pa.Table:
    """The `snapshots` rows of `name`, in draw order.

    Raises:
        ConfigError: no snapshot has that name (the message lists those there are).
    """
    rows = pa.table({"asset_id": pa.array([], pa.string())})
    if lake.exists(SNAPSHOTS.name):
        ds = lake.delta(SNAPSHOTS.name).to_pyarrow_dataset()
        rows = ds.to_table(filter=text("snapshot") == name)
    if not rows.num_rows:
        raise ConfigError(
            f"unknown snapshot {name!r}; snapshots: {', '.join(snapshot_names(lake)) or 'none'}"
        )
    return rows.sort_by("rank")


def read_snapshot(
    lake: Lake, name: str, *, columns: list[str] | None = None, to: Kind = "arrow"
) -> Any:
    """The snapshot's assets, read from the `assets` version it was drawn from.

    Args:
        lake: The lake.
        name: Snapshot name.
        columns: Asset columns (None: all, image bytes included).
        to: "arrow", "polars", "pandas" or "ray".
    """
    members = snapshot_members(lake, name)
    broken = [b for b in members.column("broken_by").to_pylist() if b]
    if broken:
        raise ConfigError(
            f"snapshot {name!r} is no longer reproducible: erased by {broken[0]}; "
            "draw a new one with `smartray sample`"
        )
    version = int(members.column("assets_version")[0].as_py())
    ids = members.column("asset_id")
    dt_ = lake.delta(ASSETS.name, version)
    cols = None if columns is None else list(dict.fromkeys(["asset_id", *columns]))
    if to == "ray":
        return lake.read_ray(ASSETS.name, version, columns=cols, asset_ids=ids.to_pylist())
    table = dt_.to_pyarrow_dataset().to_table(columns=cols, filter=text("asset_id").isin(ids))
    order = pc.index_in(table.column("asset_id"), value_set=ids)
    table = table.take(pc.sort_indices(order))
    if columns is not None and "asset_id" not in columns:
        table = table.drop_columns(["asset_id"])
    if to == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if to == "pandas":
        return table.to_pandas()
    return table
