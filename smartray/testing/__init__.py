"""Synthetic data for tests: valid table rows and image files made from numpy."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pyarrow as pa

from smartray.tables.spec import TableSpec

__all__ = ["rows"]


def _value(field: pa.Field, i: int) -> Any:
    t = field.type
    if field.name.endswith("_id") and pa.types.is_string(t):
        return hashlib.sha256(f"{field.name}:{i}".encode()).hexdigest()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return f"{field.name}-{i}"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return bytes([i % 256]) * 8
    if pa.types.is_boolean(t):
        return i % 2 == 0
    if pa.types.is_integer(t):
        return i % 100 + 1
    if pa.types.is_floating(t):
        return float(i) + 0.5
    if pa.types.is_timestamp(t):
        base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC if t.tz else None)
        return base + dt.timedelta(seconds=i)
    if pa.types.is_list(t) and pa.types.is_floating(t.value_type):
        return [float(i) + 0.5, 0.25]
    if pa.types.is_list(t) and pa.types.is_string(t.value_type):
        return [f"{field.name}-{i}-a", f"{field.name}-{i}-b"]
    raise TypeError(f"no test value for {field.name}: {t}")


def rows(spec: TableSpec, n: int = 8, **overrides: Any) -> pa.Table:
    """`n` valid rows for `spec`, keys distinct; `overrides` fix a column's value."""
    data = [{f.name: overrides.get(f.name, _value(f, i)) for f in spec.schema} for i in range(n)]
    return spec.cast(data)
