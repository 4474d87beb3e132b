"""SQL over the lake's tables with deltalake's built-in DataFusion engine."""

from __future__ import annotations

import io
import json

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from deltalake import QueryBuilder

from smartray.errors import ConfigError
from smartray.tables.catalog import ALL_TABLES
from smartray.tables.lake import Lake


def query(
    sql: str, *, lake: str | Lake | None = None, versions: dict[str, int] | None = None
) -> pa.Table:
    """Runs `sql` over every existing table of the lake; returns the result.

    Only the columns the query names are read, so metadata queries read no image bytes.

    Args:
        sql: A DataFusion SQL query; tables are named `assets`, `quarantine`, ...
        lake: The lake (a `Lake` or its URI).
        versions: Pin tables to these versions (default: latest).

    Raises:
        ConfigError: the SQL does not parse or names an unknown table or column.
    """
    lk = lake if isinstance(lake, Lake) else Lake(lake)
    qb = QueryBuilder()
    for name in ALL_TABLES:
        if lk.exists(name):
            qb.register(name, lk.delta(name, (versions or {}).get(name)))
    try:
        result = qb.execute(sql).read_all()
    except Exception as e:
        raise ConfigError(f"query failed: {e}") from None
    table = pa.table(result)
    return _plain_types(table)


def _plain_types(table: pa.Table) -> pa.Table:
    """Views to plain string/binary, so every Arrow consumer can print the result."""
    cols = []
    for col in table.columns:
        if pa.types.is_string_view(col.type):
            col = col.cast(pa.string())
        elif pa.types.is_binary_view(col.type):
            col = col.cast(pa.binary())
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.column_names)


# Polars takes widths as 16-bit numbers; a cell is never cut below this.
_MAX_WIDTH = 65_535


def _polars_text(frame: pl.DataFrame, *, thousands: bool = False) -> str:
    """`frame` as Polars prints it: every row and column, whole cells, no dtypes or shape."""
    with pl.Config(
        tbl_formatting="ASCII_MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=_MAX_WIDTH,
        fmt_str_lengths=_MAX_WIDTH,
        fmt_table_cell_list_len=-1,
        tbl_cell_numeric_alignment="RIGHT",
        thousands_separator="," if thousands else None,
    ):
        return str(frame)


def format_table(table: pa.Table, output: str = "table", *, max_rows: int = 100) -> str:
    """Renders a result as a text table (printed by Polars), CSV or JSON lines.

    Binary values (image bytes) print as `<N bytes>`; the text table shows at most
    `max_rows` rows and says how many there are.
    """
    shown = table
    for i, f in enumerate(table.schema):
        if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type):
            lengths = pc.binary_length(table.column(i)).to_pylist()
            label = pa.array([None if n is None else f"<{n} bytes>" for n in lengths], pa.string())
            shown = shown.set_column(i, f.name, label)
    if output == "csv":
        buf = io.BytesIO()
        pacsv.write_csv(shown, buf)
        return buf.getvalue().decode().rstrip("\n")
    if output == "json":
        return "\n".join(json.dumps(r, default=str) for r in shown.to_pylist())
    head = shown.slice(0, max_rows)
    frame = pl.DataFrame(head.rename_columns(_distinct(head.column_names)))
    more = table.num_rows - head.num_rows
    footer = f"({table.num_rows} row{'s' if table.num_rows != 1 else ''}" + (
        f", {more} not shown)" if more else ")"
    )
    return _polars_text(frame) + "\n" + footer


def format_lake(lake: Lake) -> str:
    """Each table's version, rows and bytes (what `smartray tables` prints)."""
    infos = lake.describe()
    frame = pl.DataFrame(
        {
            "table": [i.name for i in infos],
            "version": [i.version for i in infos],
            "rows": [i.rows for i in infos],
            "bytes": [i.bytes for i in infos],
        },
        schema={"table": pl.String, "version": pl.Int64, "rows": pl.Int64, "bytes": pl.Int64},
    )
    lines = [f"lake {lake.uri}", _polars_text(frame, thousands=True)]
    if not infos:
        lines.append("(no tables yet: run `smartray ingest` first)")
    return "\n".join(lines)


def _distinct(names: list[str]) -> list[str]:
    """Column names made distinct (`x`, `x_2`): SQL may name two columns alike, Polars not."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
