"""`TableSpec`: a lake table declared once, in code.

Writers cast to `spec.schema` and raise before writing; readers check the stored schema
against it; `schemas/tables/<name>.json` snapshots it so schema changes show in review.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from smartray.errors import SchemaMismatchError


@dataclass(frozen=True)
class TableSpec:
    """One Delta table of the lake.

    Attributes:
        name: Table name, also its folder under the lake root.
        schema: The Arrow schema rows are cast to before any write.
        key: Columns whose values identify a row; commits never write a key twice.
        partition_by: Partition columns, if any.
        description: One line for `smartray tables` and the docs.
    """

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    partition_by: tuple[str, ...] = ()
    description: str = ""
    # Columns that are large (image bytes); metadata reads leave them out.
    heavy_columns: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        names = set(self.schema.names)
        for col in (*self.key, *self.partition_by, *self.heavy_columns):
            if col not in names:
                raise SchemaMismatchError(
                    f"table {self.name!r}: column {col!r} is not in the schema"
                )

    @property
    def stats_columns(self) -> list[str]:
        """The columns whose per-file min/max statistics the Delta log may record.

        Numbers, booleans and times only: a string column's min and max are values of
        rows (an asset id, a source path), and the log is never cleaned up, so an erased
        row would live on there. Pruning on sha256 ids gains nothing anyway.
        """
        return [f.name for f in self.schema if _stats_type(f.type)]

    @property
    def table_configuration(self) -> dict[str, str]:
        """Delta table properties a new table is created with (see `stats_columns`)."""
        cols = self.stats_columns
        if not cols:
            return {"delta.dataSkippingNumIndexedCols": "0"}
        return {"delta.dataSkippingStatsColumns": ",".join(cols)}

    @property
    def light_columns(self) -> list[str]:
        """Every column except the heavy ones (image bytes, thumbnails)."""
        return [n for n in self.schema.names if n not in self.heavy_columns]

    def cast(self, data: pa.Table | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> pa.Table:
        """Returns `data` as a table with exactly this spec's schema, or raises.

        Args:
            data: An Arrow table, a dict of columns, or a list of row dicts.

        Raises:
            SchemaMismatchError: a column is missing or extra, a value does not convert, or
                a non-nullable column holds nulls.
        """
        if isinstance(data, pa.Table):
            table = data
        elif isinstance(data, Mapping):
            table = pa.table(dict(data))
        else:
            table = pa.Table.from_pylist(list(data)) if data else self.schema.empty_table()
        missing = [n for n in self.schema.names if n not in table.column_names]
        extra = [n for n in table.column_names if n not in self.schema.names]
        if extra:
            raise SchemaMismatchError(
                f"table {self.name!r}: unknown column(s) {extra}; the spec has {self.schema.names}"
            )
        columns = []
        for f in self.schema:
            if f.name in missing:
                if not f.nullable and table.num_rows:
                    raise SchemaMismatchError(
                        f"table {self.name!r}: required column {f.name!r} is missing"
                    )
                columns.append(pa.nulls(table.num_rows, f.type))
                continue
            col = table.column(f.name)
            try:
                col = col.cast(f.type) if col.type != f.type else col
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise SchemaMismatchError(
                    f"table {self.name!r}: column {f.name!r} is {col.type}, spec says {f.type}"
                ) from e
            if not f.nullable and col.null_count:
                raise SchemaMismatchError(
                    f"table {self.name!r}: column {f.name!r} has {col.null_count} null(s) "
                    "but is not nullable"
                )
            columns.append(col)
        return pa.Table.from_arrays(columns, schema=self.schema)

    def key_strings(self, table: pa.Table) -> pa.Array:
        """One string per row that identifies it: the key columns joined by NUL.

        A null key value counts as the empty string (a local file has no ETag).
        """
        if len(self.key) == 1:
            return pc.cast(table.column(self.key[0]), pa.string()).combine_chunks()
        parts = [pc.fill_null(pc.cast(table.column(k), pa.string()), "") for k in self.key]
        return pc.binary_join_element_wise(*parts, "\x00").combine_chunks()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready description, compared with `schemas/tables/<name>.json` in tests."""
        return {
            "name": self.name,
            "description": self.description,
            "key": list(self.key),
            "partition_by": list(self.partition_by),
            "columns": [
                {"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in self.schema
            ],
        }

    def snapshot_json(self) -> str:
        """`snapshot()` as stable, indented JSON text."""
        return json.dumps(self.snapshot(), indent=2, ensure_ascii=False) + "\n"


def _stats_type(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_temporal(t)
        or pa.types.is_decimal(t)
    )


def check_stored_schema(
    spec: TableSpec, stored: pa.Schema, uri: str, *, allow_missing_nullable: bool = False
) -> None:
    """Raises if a stored table's schema lacks a spec column or stores it with another type.

    Delta hands back equivalent Arrow types (`binary` for `large_binary`, views for
    strings), so types are compared in their Delta form. With `allow_missing_nullable`,
    a nullable column the spec gained after the table was written may be absent (readers
    of older lakes and of versions before the column came).

    Raises:
        SchemaMismatchError: naming the table, the column and both types.
    """
    from deltalake import Schema as DeltaSchema

    want = {f.name: f for f in DeltaSchema.from_arrow(spec.schema).fields}
    have = {f.name: f for f in DeltaSchema.from_arrow(stored).fields}
    for name, f in want.items():
        if name not in have:
            if allow_missing_nullable and f.nullable:
                continue
            raise SchemaMismatchError(f"table {uri!r}: column {name!r} is missing from the log")
        if str(have[name].type) != str(f.type):
            raise SchemaMismatchError(
                f"table {uri!r}: column {name!r} is {have[name].type}, spec says {f.type}"
            )
