"""Parquet part files written by workers straight into a table's folder.

A part is invisible until the driver commits an add action for it (`commit.commit_parts`),
so a worker that crashes or is retried leaves at most an orphan file, never a row.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from smartray.errors import SchemaMismatchError
from smartray.tables.spec import TableSpec
from smartray.tables.storage import LakeLocation


@dataclass(frozen=True)
class PartFile:
    """A Parquet file written into a table's folder, not yet committed.

    Attributes:
        path: Path relative to the table root.
        size: Bytes on storage.
        num_records: Rows in the file.
        stats: Delta add-action statistics (JSON).
    """

    path: str
    size: int
    num_records: int
    stats: str


def delta_stats(table: pa.Table) -> str:
    """Delta add-action statistics for `table`: row count, min/max of numbers, null counts.

    Strings get no min/max: those would be values of rows, such as an asset id, and the
    Delta log keeps them after the rows are erased (`TableSpec.stats_columns`).
    """
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for name in table.column_names:
        col = table.column(name)
        nulls[name] = col.null_count
        t = col.type
        if col.null_count == len(col) or not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            continue
        mm = pc.min_max(col)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if pa.types.is_floating(t) and (lo != lo or hi != hi):  # NaN
            continue
        mins[name], maxs[name] = lo, hi
    return json.dumps(
        {"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}
    )


def write_part(location: LakeLocation, spec: TableSpec, data: pa.Table, *, prefix: str) -> PartFile:
    """Casts `data` to `spec` and writes it as one Parquet file in the table's folder.

    Args:
        location: The lake.
        spec: The table; must not be partitioned.
        data: Rows for the table.
        prefix: Start of the file name (a run id), so a run's parts can be found.
    """
    if spec.partition_by:
        raise SchemaMismatchError(f"table {spec.name!r} is partitioned; parts are unpartitioned")
    table = spec.cast(data)
    fs, root = location.filesystem()
    if location.is_local:
        fs.create_dir(f"{root}/{spec.name}", recursive=True)
    return write_parquet(
        fs, f"{root}/{spec.name}", spec, table, f"part-{prefix}-{uuid.uuid4().hex}.parquet"
    )


def write_parquet(fs: Any, base: str, spec: TableSpec, table: pa.Table, rel: str) -> PartFile:
    """Writes `table` (already in `spec`'s schema) to `base/rel`; image bytes uncompressed."""
    no_compress = set(spec.heavy_columns)
    compression = {n: ("none" if n in no_compress else "zstd") for n in table.column_names}
    path = f"{base}/{rel}"
    with fs.open_output_stream(path) as out:
        pq.write_table(
            table,
            out,
            compression=compression,
            use_dictionary=[n for n in table.column_names if n not in no_compress],
            row_group_size=256,
        )
    size = fs.get_file_info(path).size
    return PartFile(path=rel, size=int(size), num_records=table.num_rows, stats=delta_stats(table))
