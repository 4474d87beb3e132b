"""Filters over table rows: dataset filters that hold on every file, and SQL `--where`s.

delta-rs's DML writes (delete, update, merge) store string columns as `string_view`,
and pyarrow's filter kernels do not compare `string_view` with a plain string: a filter
on such a column fails on those files unless it casts first (`text`).

`filter_table` applies a user's SQL expression (`blur > 100 AND width >= 640`), parsed
by Polars, to an Arrow table in memory; a bad one is a `ConfigError` naming the columns.
"""

import pyarrow as pa
import pyarrow.dataset as pads

from smartray.errors import ConfigError


def text(name: str) -> pads.Expression:
    """String column `name` for a dataset filter, as plain `string` on every file."""
    return pads.field(name).cast(pa.string())


def filter_table(table: pa.Table, where: str | None, flag: str = "--where") -> pa.Table:
    """The rows of `table` matching the SQL expression `where` (all rows if None).

    Args:
        table: The rows to filter.
        where: A SQL expression over `table`'s columns, or None (or "") for every row.
        flag: The option `where` came from, as error messages name it.

    Raises:
        ConfigError: it does not parse, names an unknown column, or does not evaluate;
            the message names the valid columns.
    """
    if not where:
        return table
    import polars as pl

    valid = ", ".join(table.column_names)
    try:
        expr = pl.sql_expr(where)
    except Exception as e:
        raise ConfigError(f"{flag} {where!r} does not parse ({e}); columns: {valid}") from None
    unknown = [c for c in expr.meta.root_names() if c not in table.column_names]
    if unknown:
        raise ConfigError(
            f"{flag} {where!r}: unknown column(s) {', '.join(unknown)}; valid columns: {valid}"
        )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    try:
        kept = frame.with_row_index("_row").filter(expr).get_column("_row").to_numpy()
    except Exception as e:
        raise ConfigError(f"{flag} {where!r} cannot be evaluated: {e}") from None
    return table.take(pa.array(kept, pa.int64()))
