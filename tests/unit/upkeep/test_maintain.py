"""`smartray maintain`: compaction, vacuum within what runs and snapshots pin, dry runs."""

import json
import logging
import os

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from jobs.maintain import main
from smartray.tables import ASSETS, RUNS, SNAPSHOTS, Lake, LakeLocation
from smartray.tables.commit import commit_rows
from smartray.tables.runs import Run
from smartray.testing import rows
from smartray.upkeep import Retention, maintain, pins


def _append(loc, i, n=2):
    """Commits `n` new assets (ids `{i}-{j}`); the table's version is then i + 1."""
    batch = rows(ASSETS, n)
    batch = batch.set_column(0, "asset_id", pa.array([f"{i}-{j}" for j in range(n)]))
    return commit_rows(loc, ASSETS, batch, app_id=f"load-{i}").version


@pytest.fixture(autouse=True)
def _fresh_log_handlers():
    """Each job's `setup_logging` logs to this test's captured stderr, not a closed one."""
    saved = logging.root.handlers[:]
    logging.root.handlers.clear()
    yield
    logging.root.handlers[:] = saved


@pytest.fixture
def lake(lake_dir):
    """A lake whose `assets` got four small appends (versions 1..4, four files)."""
    loc = LakeLocation.from_uri(lake_dir)
    for i in range(4):
        _append(loc, i)
    return loc


def _sorted(table):
    return table.sort_by("asset_id").to_pylist()


def _parquet_files(loc, name="assets"):
    folder = loc.table_uri(name)
    return sorted(f for f in os.listdir(folder) if f.endswith(".parquet"))


def _pin(loc, versions, broken_by=None, job="ingest", run_id="ingest-1"):
    row = rows(RUNS, 1, run_id=run_id, job=job, input_versions="{}", broken_by=broken_by)
    row = row.set_column(
        row.schema.get_field_index("output_versions"),
        "output_versions",
        pa.array([json.dumps(versions)]),
    )
    commit_rows(loc, RUNS, row, app_id=run_id)


def _maintain(loc, *flags):
    main(["--lake", loc.root, *flags])


def test_compaction_leaves_fewer_files_the_same_rows_and_a_runs_row(lake, capsys):
    before = _sorted(Lake(lake.root).table("assets"))
    _maintain(lake, "--tables", "assets")
    out = capsys.readouterr().out
    assert "assets: version 4 -> 5, files 4 -> 1, vacuumed 0 file(s)" in out
    assert "retention 168 h (minimum)" in out
    assert _sorted(Lake(lake.root).table("assets")) == before
    # The four small files stay on disk: the minimum retention keeps them a week.
    assert len(_parquet_files(lake)) == 5

    run = Lake(lake.root).table("runs").to_pylist()[-1]
    assert run["job"] == "maintain"
    assert json.loads(run["output_versions"])["assets"] == 5
    counts = json.loads(run["counts"])
    assert counts["assets.files_compacted"] == 4
    assert counts["assets.files_added"] == 1
    assert counts["assets.files_vacuumed"] == 0
    assert run["run_id"] in out.splitlines()[-1]
    optimize = DeltaTable(lake.table_uri("assets")).history(limit=1)[0]
    assert optimize["operation"] == "OPTIMIZE"
    assert optimize["smartray.run_id"] == run["run_id"]
    assert os.path.exists(f"{lake.table_uri('assets')}/_delta_log/_last_checkpoint")


def test_unpinned_old_versions_are_vacuumed(lake, capsys):
    _maintain(lake, "--tables", "assets", "--min-retention-hours", "0")
    out = capsys.readouterr().out
    assert "files 4 -> 1, vacuumed 4 file(s), retention 0 h (minimum)" in out
    assert len(_parquet_files(lake)) == 1
    with pytest.raises(OSError, match="not found"):
        Lake(lake.root).table("assets", version=1)


def test_a_version_pinned_by_a_run_stays_readable(lake, capsys):
    pinned = _sorted(Lake(lake.root).table("assets", version=1))
    _pin(lake, {"assets": 1})
    _maintain(lake, "--min-retention-hours", "0")
    out = capsys.readouterr().out
    assert "retention 1 h (covers version 1 pinned by run ingest-1)" in out
    assert "assets: version 4 -> 5, files 4 -> 1, vacuumed 0 file(s)" in out
    assert _sorted(Lake(lake.root).table("assets", version=1)) == pinned
    assert len(_parquet_files(lake)) == 5


@pytest.mark.parametrize("broken", ["run", "snapshot"])
def test_rows_broken_by_an_erasure_pin_nothing(lake, broken, capsys):
    if broken == "run":
        _pin(lake, {"assets": 1}, broken_by="erase-1")
    else:
        snap = rows(SNAPSHOTS, 2, snapshot="s1", assets_version=1, broken_by="erase-1")
        commit_rows(lake, SNAPSHOTS, snap, app_id="sample-1")
    _maintain(lake, "--tables", "assets", "--min-retention-hours", "0")
    assert "vacuumed 4 file(s), retention 0 h (minimum)" in capsys.readouterr().out
    assert len(_parquet_files(lake)) == 1


def test_a_snapshot_pins_its_assets_version(lake, capsys):
    pinned = _sorted(Lake(lake.root).table("assets", version=2))
    snap = rows(SNAPSHOTS, 2, snapshot="s1", assets_version=2, broken_by=None)
    commit_rows(lake, SNAPSHOTS, snap, app_id="sample-1")
    _maintain(lake, "--tables", "assets", "--min-retention-hours", "0")
    assert "covers version 2 pinned by snapshot s1" in capsys.readouterr().out
    assert _sorted(Lake(lake.root).table("assets", version=2)) == pinned


def test_a_pin_older_than_the_minimum_sets_the_retention(lake):
    _pin(lake, {"assets": 1})
    committed = DeltaTable(lake.table_uri("assets")).history()[-2]["timestamp"]  # version 1
    later = committed + 200 * 3_600_000  # 200 h after version 1 was committed
    result = maintain(lake, tables=["assets", "runs"], dry_run=True, now_ms=later)
    assets, runs = result.tables
    assert assets.retention == Retention(201, "covers version 1 pinned by run ingest-1")
    assert runs.retention == Retention(168, "minimum")  # runs' own versions are not pinned


def test_which_rows_pin_what(lake_dir):
    loc = LakeLocation.from_uri(lake_dir)
    run = Run("ingest", {}, run_id="ingest-1", input_versions={"assets": None, "videos": 3})
    run.output_versions["assets"] = 7
    run.record(loc)  # its own `runs` version pins nothing
    maintain_row = Run("maintain", {}, run_id="maintain-1", output_versions={"assets": 2})
    maintain_row.record(loc)  # maintain's versions hold the same rows: no pin either
    got = {(p.table, p.version, p.by) for p in pins(loc)}
    assert got == {("assets", 7, "run ingest-1"), ("videos", 3, "run ingest-1")}


def test_a_pinned_version_gone_from_the_log_keeps_everything(lake, capsys):
    table = DeltaTable(lake.table_uri("assets"))
    table.create_checkpoint()  # at version 4, so the table loads without commits 0..3
    for v in range(4):
        os.remove(f"{lake.table_uri('assets')}/_delta_log/{v:020d}.json")
    _pin(lake, {"assets": 1})
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    # a handler of its own: the suite's log handlers may hold an earlier test's stderr
    logging.getLogger("smartray.upkeep").addHandler(handler)
    try:
        _maintain(lake, "--tables", "assets", "--min-retention-hours", "0")
    finally:
        logging.getLogger("smartray.upkeep").removeHandler(handler)
    out = capsys.readouterr().out
    assert "vacuumed 0 file(s), retention all (keeps everything: version 1 pinned by run" in out
    messages = [r.getMessage() for r in records]
    assert any("version 1, pinned by run ingest-1, is not in the Delta log" in m for m in messages)
    assert len(_parquet_files(lake)) == 5


def test_dry_run_lists_what_vacuum_would_delete_and_deletes_nothing(lake, capsys):
    _maintain(lake, "--tables", "assets")  # compacts; the small files stay a week
    files, runs_version = _parquet_files(lake), Lake(lake.root).version("runs")
    capsys.readouterr()
    _maintain(lake, "--dry-run", "--min-retention-hours", "0")
    out = capsys.readouterr().out
    assert "assets: version 5, files 1, would vacuum 4 file(s)" in out
    assert out.splitlines()[-1] == (
        "maintain (dry run): 2 table(s), vacuum would delete 4 file(s); nothing written"
    )
    assert _parquet_files(lake) == files
    assert Lake(lake.root).version("assets") == 5
    assert Lake(lake.root).version("runs") == runs_version


def test_unknown_table_exits_2_and_writes_nothing(lake, capsys):
    with pytest.raises(SystemExit) as e:
        _maintain(lake, "--tables", "assets,nope")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown table(s) nope; known tables: assets, asset_sources" in err
    assert Lake(lake.root).version("assets") == 4
    assert not Lake(lake.root).exists("runs")


def test_an_empty_lake_has_nothing_to_maintain(tmp_path, capsys):
    main(["--lake", str(tmp_path / "lake")])
    assert "no tables yet; nothing to maintain" in capsys.readouterr().out
    assert not (tmp_path / "lake").exists()


def test_tables_asked_for_that_do_not_exist_are_named(lake, capsys):
    main(["--lake", lake.root, "--tables", "videos"])
    out = capsys.readouterr().out
    assert "not in the lake yet, skipped: videos" in out
    assert "none of the tables asked for; nothing to maintain" in out
