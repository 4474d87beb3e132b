import json
from pathlib import Path

import pyarrow as pa
import pytest

from smartray.errors import SchemaMismatchError
from smartray.tables import ALL_TABLES, ASSET_SOURCES, RUNS
from smartray.testing import rows

SNAPSHOTS = Path(__file__).resolve().parents[3] / "schemas" / "tables"


@pytest.mark.parametrize("name", sorted(ALL_TABLES))
def test_snapshot_matches_spec(name):
    path = SNAPSHOTS / f"{name}.json"
    assert path.exists(), f"run `python -m smartray.tables.schema_files` to write {path}"
    assert json.loads(path.read_text()) == ALL_TABLES[name].snapshot()


def test_every_snapshot_file_has_a_spec():
    assert {p.stem for p in SNAPSHOTS.glob("*.json")} == set(ALL_TABLES)


@pytest.mark.parametrize("name", sorted(ALL_TABLES))
def test_testing_rows_are_valid(name):
    table = rows(ALL_TABLES[name], n=8)
    assert table.schema == ALL_TABLES[name].schema
    assert len(set(ALL_TABLES[name].key_strings(table).to_pylist())) == 8


def test_cast_rejects_unknown_column():
    data = rows(RUNS, 2).append_column("password", pa.array(["x", "y"]))
    with pytest.raises(SchemaMismatchError, match=r"unknown column.*password"):
        RUNS.cast(data)


def test_cast_rejects_missing_required_column():
    data = rows(RUNS, 2).drop_columns(["job"])
    with pytest.raises(SchemaMismatchError, match="required column 'job'"):
        RUNS.cast(data)


def test_cast_rejects_null_in_required_column():
    data = rows(RUNS, 2).to_pylist()
    data[1]["status"] = None
    with pytest.raises(SchemaMismatchError, match="'status' has 1 null"):
        RUNS.cast(data)


def test_cast_rejects_unconvertible_type():
    data = rows(ASSET_SOURCES, 1).to_pylist()
    data[0]["size"] = "big"
    with pytest.raises((SchemaMismatchError, pa.ArrowInvalid)):
        ASSET_SOURCES.cast(data)


def test_cast_fills_missing_nullable_column_and_orders_columns():
    data = rows(ASSET_SOURCES, 3).drop_columns(["etag"])
    out = ASSET_SOURCES.cast(data.select(list(reversed(data.column_names))))
    assert out.schema == ASSET_SOURCES.schema
    assert out.column("etag").null_count == 3


def test_composite_key_strings_distinguish_rows():
    t = ASSET_SOURCES.cast(rows(ASSET_SOURCES, 2, asset_id="a" * 64))
    keys = ASSET_SOURCES.key_strings(t).to_pylist()
    assert len(set(keys)) == 2
    assert all(k.startswith("a" * 64 + "\x00") for k in keys)
