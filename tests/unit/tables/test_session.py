import json

import pyarrow as pa
import pytest

from smartray.errors import ConfigError, TableNotFoundError, UnknownTableError
from smartray.tables import ASSETS, DUP_GROUPS, RUNS, SPLITS, Lake
from smartray.testing import rows


def _runs(lake: Lake) -> list[dict]:
    return lake.table("runs").to_pylist() if lake.exists("runs") else []


def test_a_run_records_what_it_read_and_wrote_once(lake_dir):
    lake = Lake(lake_dir)
    with lake.session("seed") as s:
        s.commit(ASSETS, rows(ASSETS, 4))
    with lake.session("job", {"k": 1}) as s:
        assert s.read(ASSETS, columns=["asset_id"]).num_rows == 4
        s.commit(DUP_GROUPS, rows(DUP_GROUPS, 2))
    job = next(r for r in _runs(lake) if r["job"] == "job")
    assert job["run_id"] == s.run_id
    assert json.loads(job["config"]) == {"k": 1}
    assert json.loads(job["input_versions"]) == {"assets": 1}
    assert json.loads(job["output_versions"]) == {"dup_groups": 1}
    assert len(_runs(lake)) == 2


def test_reads_stay_on_the_pinned_version_until_the_run_writes(lake_dir):
    lake = Lake(lake_dir)
    with lake.session("seed") as s:
        s.commit(ASSETS, rows(ASSETS, 2))
    s = lake.session("reader")
    assert s.read(ASSETS, columns=["asset_id"]).num_rows == 2
    with lake.session("other") as other:  # another job appends meanwhile
        other.commit(ASSETS, rows(ASSETS, 5))
    assert s.read(ASSETS, columns=["asset_id"]).num_rows == 2
    assert len(s.keys(ASSETS)) == 2
    # its own commit: later reads see what it wrote (and the other job's rows under it)
    s.commit(ASSETS, rows(ASSETS, 7))
    assert s.read(ASSETS, columns=["asset_id"]).num_rows == 7
    assert s.run.input_versions == {"assets": 1}


def test_two_commits_to_one_table_in_one_run_both_land(lake_dir):
    # the app transaction is (run id, sequence): the second commit is not a replay
    lake = Lake(lake_dir)
    with lake.session("two") as s:
        first = s.commit(SPLITS, rows(SPLITS, 2))
        second = s.commit(SPLITS, rows(SPLITS, 4))
    assert (first.rows_written, second.rows_written) == (2, 2)
    assert not second.already_committed
    assert lake.table("splits").num_rows == 4
    assert json.loads(_runs(lake)[0]["output_versions"]) == {"splits": 2}


def test_where_upsert_and_replace_modes(lake_dir):
    lake = Lake(lake_dir)
    data = rows(SPLITS, 4)
    with lake.session("modes") as s:
        s.commit(SPLITS, data)
        first = data.column("asset_id")[0].as_py()
        gone = s.commit(SPLITS, mode="where", predicate=f"asset_id = '{first}'")
        assert gone.rows_written == 1
        changed = data.slice(1, 1).set_column(
            data.schema.get_field_index("split"), "split", pa.array(["test"])
        )
        assert s.commit(SPLITS, changed, mode="upsert").rows_written == 1
        assert s.read(SPLITS, columns=["split"]).column("split").to_pylist().count("test") >= 1
        s.commit(SPLITS, data.slice(0, 1), mode="replace")
    assert lake.table("splits").num_rows == 1


def test_a_failed_run_records_nothing_and_a_dry_run_can_discard(lake_dir):
    lake = Lake(lake_dir)

    def failing_job() -> None:
        with lake.session("fails") as s:
            s.commit(ASSETS, rows(ASSETS, 1))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_job()
    assert _runs(lake) == []
    with lake.session("dry") as s:
        s.discard()
    assert _runs(lake) == []
    s = lake.session("explicit")
    assert s.record().rows_written == 1
    assert s.record().rows_written == 1  # the first result: one row only
    assert len(_runs(lake)) == 1


def test_usage_errors(lake_dir):
    s = Lake(lake_dir).session("bad")
    assert s.read(ASSETS, columns=["asset_id"], missing_ok=True).num_rows == 0
    assert s.version(ASSETS) is None
    with pytest.raises(TableNotFoundError):
        s.read(ASSETS)
    with pytest.raises(ConfigError, match="needs a predicate"):
        s.commit(ASSETS, mode="where")
    with pytest.raises(ConfigError, match="choose one of append, upsert"):
        s.commit(ASSETS, rows(ASSETS, 1), mode="merge")  # type: ignore[arg-type]
    assert not Lake(lake_dir).exists(RUNS.name)


def test_an_unknown_table_name_lists_the_known_ones(lake_dir):
    with pytest.raises(UnknownTableError, match=r"unknown table 'asets'; known tables: .*assets"):
        Lake(lake_dir).table("asets")
