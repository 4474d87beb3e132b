"""SQL over the lake's tables with deltalake's built-in DataFusion engine."""

from __future__ import annotations

import io
import json

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


def format_table(table: pa.Table, output: str = "table", *, max_rows: int = 100) -> str:
    """Renders a result as an aligned text table, CSV or JSON lines.

    Binary values (image bytes) print as `<N bytes>`.
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
    rows = shown.slice(0, max_rows).to_pylist()
    names = shown.column_names
    cells = [[("" if r[n] is None else str(r[n])) for n in names] for r in rows]
    widths = [max([len(n), *(len(c[i]) for c in cells)]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    more = table.num_rows - len(rows)
    lines.append(
        f"({table.num_rows} row{'s' if table.num_rows != 1 else ''}"
        + (f", {more} not shown)" if more else ")")
    )
    return "\n".join(lines)
