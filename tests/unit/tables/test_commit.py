import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from smartray.errors import SchemaMismatchError, TableNotFoundError
from smartray.tables import ASSETS, RUNS, Lake, LakeLocation, write_part
from smartray.tables import commit as commit_mod
from smartray.tables.commit import commit_parts, commit_rows
from smartray.testing import rows


def _loc(lake_dir):
    return LakeLocation.from_uri(lake_dir)


def test_commit_rows_writes_each_key_once(lake_dir):
    loc = _loc(lake_dir)
    data = rows(RUNS, 4)
    first = commit_rows(loc, RUNS, pa.concat_tables([data, data.slice(0, 2)]), app_id="run-1")
    assert (first.rows_written, first.rows_skipped, first.version) == (4, 2, 1)
    again = commit_rows(loc, RUNS, rows(RUNS, 6), app_id="run-2")
    assert (again.rows_written, again.rows_skipped) == (2, 4)
    assert Lake(lake_dir).table("runs").num_rows == 6


def test_replayed_app_transaction_commits_nothing(lake_dir):
    loc = _loc(lake_dir)
    commit_rows(loc, RUNS, rows(RUNS, 2), app_id="run-1")
    # Same app id and version: a retried driver. New keys must not be written either.
    replay = commit_rows(loc, RUNS, rows(RUNS, 5), app_id="run-1")
    assert replay.already_committed
    assert replay.rows_written == 0
    assert DeltaTable(loc.table_uri("runs")).version() == 1
    assert Lake(lake_dir).table("runs").num_rows == 2


def test_nothing_new_makes_no_commit(lake_dir):
    loc = _loc(lake_dir)
    commit_rows(loc, RUNS, rows(RUNS, 3), app_id="run-1")
    result = commit_rows(loc, RUNS, rows(RUNS, 3), app_id="run-2")
    assert result.rows_written == 0
    assert DeltaTable(loc.table_uri("runs")).version() == 1


def test_commit_metadata_is_recorded(lake_dir):
    loc = _loc(lake_dir)
    commit_rows(loc, RUNS, rows(RUNS, 1), app_id="run-7", metadata={"smartray.job": "ingest"})
    dt = DeltaTable(loc.table_uri("runs"))
    assert dt.transaction_version("run-7") == 1
    last = dt.history(1)[0]
    assert last["smartray.job"] == "ingest"
    assert last["smartray.app_id"] == "run-7"


def test_conflicting_writer_is_retried_without_duplicates(lake_dir, monkeypatch):
    """Another job commits the same keys between our read and our commit."""
    loc = _loc(lake_dir)
    commit_rows(loc, RUNS, rows(RUNS, 1), app_id="seed")
    data = rows(RUNS, 4)
    real = commit_mod.existing_keys
    calls = {"n": 0}

    def racing_existing_keys(dt, spec):
        keys = real(dt, spec)
        calls["n"] += 1
        if calls["n"] == 1:  # the other writer lands right after we read the keys
            write_deltalake(loc.table_uri("runs"), data.slice(1, 2), mode="append")
        return keys

    monkeypatch.setattr(commit_mod, "existing_keys", racing_existing_keys)
    monkeypatch.setattr(commit_mod, "_BACKOFF_S", 0.001)
    result = commit_rows(loc, RUNS, data, app_id="run-x")
    assert calls["n"] >= 2, "the conflict should have forced a second plan"
    ids = Lake(lake_dir).table("runs", columns=["run_id"]).column("run_id").to_pylist()
    assert sorted(ids) == sorted(set(ids))
    assert len(ids) == 4
    assert result.rows_written == 1  # rows 1..2 by the other writer, row 0 seeded, row 3 ours


def test_commit_parts_drops_keys_already_present(lake_dir):
    loc = _loc(lake_dir)
    data = rows(ASSETS, 6)
    commit_parts(loc, ASSETS, [write_part(loc, ASSETS, data.slice(0, 2), prefix="r1")], app_id="r1")
    overlap = write_part(loc, ASSETS, data.slice(1, 3), prefix="r2")  # ids 1, 2, 3
    only_old = write_part(loc, ASSETS, data.slice(0, 1), prefix="r2")  # id 0
    in_run_dupe = write_part(loc, ASSETS, data.slice(3, 3), prefix="r2")  # ids 3, 4, 5
    result = commit_parts(loc, ASSETS, [overlap, only_old, in_run_dupe], app_id="r2")
    assert result.rows_written == 4
    table = Lake(lake_dir).table("assets", columns=["asset_id"])
    ids = table.column("asset_id").to_pylist()
    assert sorted(ids) == sorted(data.column("asset_id").to_pylist())
    # The wholly duplicate part is gone from disk; rewritten parts replaced their originals.
    files = {p.name for p in (__import__("pathlib").Path(lake_dir) / "assets").glob("*.parquet")}
    live = {u.rsplit("/", 1)[1] for u in DeltaTable(loc.table_uri("assets")).file_uris()}
    assert files == live


def test_commit_parts_replay_is_a_no_op(lake_dir):
    loc = _loc(lake_dir)
    part = write_part(loc, ASSETS, rows(ASSETS, 3), prefix="r1")
    commit_parts(loc, ASSETS, [part], app_id="r1")
    again = commit_parts(loc, ASSETS, [part], app_id="r1")
    assert again.already_committed
    assert Lake(lake_dir).table("assets", columns=["asset_id"]).num_rows == 3


def test_parts_carry_row_count_stats(lake_dir):
    loc = _loc(lake_dir)
    part = write_part(loc, ASSETS, rows(ASSETS, 5), prefix="r1")
    commit_parts(loc, ASSETS, [part], app_id="r1")
    info = {i.name: i for i in Lake(lake_dir).describe()}
    assert info["assets"].rows == 5
    assert info["assets"].bytes == part.size


def test_metadata_read_skips_image_bytes(lake_dir):
    loc = _loc(lake_dir)
    commit_parts(loc, ASSETS, [write_part(loc, ASSETS, rows(ASSETS, 2), prefix="r")], app_id="r")
    t = Lake(lake_dir).table("assets", columns=ASSETS.light_columns)
    assert "data" not in t.column_names
    assert "thumbnail" not in t.column_names
    path = next((__import__("pathlib").Path(lake_dir) / "assets").glob("*.parquet"))
    assert pq.ParquetFile(path).schema_arrow.field("data").type == pa.large_binary()


def test_lake_table_kinds_and_versions(lake_dir):
    loc = _loc(lake_dir)
    commit_rows(loc, RUNS, rows(RUNS, 2), app_id="a")
    commit_rows(loc, RUNS, rows(RUNS, 5), app_id="b")
    lake = Lake(lake_dir)
    assert lake.table("runs", version=1).num_rows == 2
    assert lake.table("runs").num_rows == 5
    assert lake.table("runs", to="polars").height == 5
    assert len(lake.table("runs", to="pandas")) == 5
    assert lake.version("runs") == 2
    assert lake.version("assets") is None


def test_lake_missing_table_says_what_to_do(lake_dir):
    with pytest.raises(TableNotFoundError, match="smartray ingest"):
        Lake(lake_dir).table("assets")


def test_reader_refuses_a_table_with_another_schema(lake_dir):
    loc = _loc(lake_dir)
    write_deltalake(loc.table_uri("runs"), pa.table({"run_id": ["x"], "job": [1]}))
    with pytest.raises(SchemaMismatchError, match="runs"):
        Lake(lake_dir).table("runs")


def test_lake_uri_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTRAY_LAKE", str(tmp_path / "elsewhere"))
    assert Lake().uri == str(tmp_path / "elsewhere")
