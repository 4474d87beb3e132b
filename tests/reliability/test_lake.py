"""Lake-level guarantees (issue #17): orphan parts, racing commits, erase on S3 and
against an in-flight ingest, erased ids out of the log, many small appends then maintain."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import multiprocessing as mp
import os
import random
import signal
import time
import uuid

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from jobs import maintain as maintain_job
from smartray import Lake
from smartray.ingest import IngestConfig, ingest
from smartray.sanitize import SanitizeConfig
from smartray.tables import LakeLocation
from smartray.upkeep import logfiles
from tests.integration.test_crashes import assert_exactly_once, make_images, run_driver

FAST = SanitizeConfig(blur=False)
TABLES = ("assets", "asset_sources", "quarantine", "runs")


@pytest.fixture(autouse=True)
def _fresh_log_handlers():
    """Each job's `setup_logging` logs to this test's captured stderr, not a closed one."""
    saved = logging.root.handlers[:]
    logging.root.handlers.clear()
    yield
    logging.root.handlers[:] = saved


def uncommitted(loc: LakeLocation, name: str) -> list[str]:
    """Parquet files in the table's folder that no commit of its log ever added or removed."""
    logged = logfiles.logged_files(loc, name)
    return sorted(f.path for f in logfiles.data_files(loc, name) if f.path not in logged)


def loads_whole(lake: Lake, name: str) -> int:
    """Reads every column of every file of the table's latest version; its row count."""
    return int(lake.table(name).num_rows)


def test_maintain_deletes_a_killed_drivers_orphan_parts(ray_session, tmp_path, figures, capsys):
    src = make_images(tmp_path / "src", 10)
    lake_uri = str(tmp_path / "lake")
    loc = LakeLocation.from_uri(lake_uri)
    proc = run_driver(ray_session, src, lake_uri, "slow")
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "lake" / "assets").glob("part-*.parquet"))) < 2:
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the workers wrote parts; the driver never commits
    proc.wait(timeout=60)
    time.sleep(1.0)  # a worker that was writing its part when the driver died finishes it
    orphans = uncommitted(loc, "assets")
    assert len(orphans) >= 2

    # the default grace period spares them: they could belong to a job still running
    maintain_job.main(["--lake", lake_uri])
    assert "0 orphan file(s) deleted" in capsys.readouterr().out
    assert uncommitted(loc, "assets") == orphans

    maintain_job.main(["--lake", lake_uri, "--orphan-grace-minutes", "0"])
    out = capsys.readouterr().out
    assert f"{len(orphans)} orphan file(s) deleted" in out
    left = {name: uncommitted(loc, name) for name in TABLES if Lake(lake_uri).exists(name)}
    assert left == {name: [] for name in left}
    lake = Lake(lake_uri)
    assert loads_whole(lake, "assets") == 0
    runs = lake.table("runs", columns=["job", "counts"]).to_pylist()
    assert [r["job"] for r in runs] == ["maintain", "maintain"]
    deleted = sorted(json.loads(r["counts"])["assets.orphans_deleted"] for r in runs)
    assert deleted == [0, len(orphans)]

    summary = ingest(IngestConfig(sources=(str(src),), lake=lake_uri, sanitize=FAST))
    assert summary.counts["ingested"] == 10
    assert_exactly_once(lake_uri, n_sources=10, n_assets=10)
    assert uncommitted(loc, "assets") == []
    figures.record(
        "test_maintain_deletes_a_killed_drivers_orphan_parts",
        orphan_parts_found=len(orphans),
        orphans_left_after_maintain=0,
        rows_after_rerun=10,
    )


# -- the same (app id, version) from two processes at once ---------------------------------


def _racer(role, barrier, tasks, results):
    """One of two processes: for each task, waits at the barrier, then commits."""
    from smartray.tables import ASSETS, LakeLocation
    from smartray.tables.commit import commit_parts, commit_rows
    from smartray.tables.parts import write_part

    while (task := tasks.get()) is not None:
        loc = LakeLocation.from_uri(task["lake"])
        data = ASSETS.cast(task["rows"])
        parts = []
        if task["mode"] == "parts":  # each process's workers wrote their own parts
            half = data.num_rows // 2
            parts = [
                write_part(loc, ASSETS, data.slice(0, half), prefix=task["app_id"]),
                write_part(loc, ASSETS, data.slice(half), prefix=task["app_id"]),
            ]
        barrier.wait(timeout=60)
        try:
            if task["mode"] == "parts":
                r = commit_parts(loc, ASSETS, parts, app_id=task["app_id"])
            else:
                r = commit_rows(loc, ASSETS, data, app_id=task["app_id"])
            results.put((role, r.version, r.rows_written, r.already_committed, None))
        except Exception as e:  # reported, and the test fails on it
            results.put((role, -1, 0, False, repr(e)))


def asset_rows(ids):
    from smartray.tables import ASSETS
    from smartray.testing import rows

    batch = rows(ASSETS, len(ids), video_id=None, parent_id=None)
    return batch.set_column(0, "asset_id", pa.array(ids, pa.string()))


def make_ids(tag, n):
    return [hashlib.sha256(f"{tag}:{i}".encode()).hexdigest() for i in range(n)]


def s3_lake(s3_server, name):
    bucket = f"{name}-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=bucket)
    return f"s3://{bucket}/lake"


@pytest.mark.parametrize("store", ["local", "s3"])
def test_one_app_transaction_from_two_processes_commits_once(
    store, tmp_path, campaign, figures, s3_server
):
    from smartray.tables import ASSETS
    from smartray.tables.commit import commit_rows

    lake_uri = str(tmp_path / "lake") if store == "local" else s3_lake(s3_server, "race")
    loc = LakeLocation.from_uri(lake_uri)
    ctx = mp.get_context("spawn")
    barrier, tasks, results = ctx.Barrier(2), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(r, barrier, tasks, results)) for r in (0, 1)]
    for p in procs:
        p.start()
    rounds = campaign.kill_seeds if store == "local" else max(2, campaign.kill_seeds // 3)
    wins = dups = regressions = 0
    expected: set[str] = set()
    try:
        for i in range(rounds):
            seed = campaign.seed + i
            rng = random.Random(seed)
            for mode in ("rows", "parts"):
                new = make_ids(f"race-{store}-{seed}-{mode}", rng.randint(2, 30))
                # some keys are in the table already: the commit anti-joins them away
                have = sorted(expected)[: rng.randint(0, min(5, len(expected)))]
                before = commit_rows(
                    loc, ASSETS, asset_rows(make_ids("seed", 1)), app_id="s"
                ).version
                app_id = f"run-{seed}-{mode}"
                for _ in procs:
                    tasks.put({"lake": lake_uri, "mode": mode, "app_id": app_id,
                               "rows": asset_rows(have + new).to_pylist()})  # fmt: skip
                got = sorted(results.get(timeout=120) for _ in procs)
                assert [g[4] for g in got] == [None, None], got
                winners = [g for g in got if not g[3]]
                wins += len(winners)
                assert len(winners) == 1, got  # exactly one commit; the other finds it done
                assert winners[0][2] == len(new)
                assert winners[0][1] == before + 1
                assert all(g[1] >= before + 1 for g in got)  # no one reports an older version
                expected |= set(new) | set(make_ids("seed", 1))
                ids = Lake(lake_uri).table("assets", columns=["asset_id"]).column("asset_id")
                ids = ids.to_pylist()
                dups += len(ids) - len(set(ids))
                assert set(ids) == expected
                versions = [h["version"] for h in Lake(lake_uri).delta("assets").history()]
                regressions += int(max(versions) != before + 1)
    finally:
        for _ in procs:
            tasks.put(None)
        for p in procs:
            p.join(timeout=60)
    assert (dups, regressions) == (0, 0)
    figures.record(
        f"test_one_app_transaction_from_two_processes_commits_once[{store}]",
        races=2 * rounds, commits_won=wins, rows_added_twice=dups, version_regressions=regressions,
    )  # fmt: skip


# -- erase ---------------------------------------------------------------------------------


def id_mentions(loc: LakeLocation, ids) -> list[str]:
    """Every file under the lake root that holds one of `ids`: as raw bytes, or in any
    value of a Parquet file (data files and checkpoints, decompressed)."""
    fs, root = loc.filesystem()
    needles = [i.encode() for i in ids]
    found = []
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        with fs.open_input_stream(info.path) as f:
            raw = f.read()
        text = raw
        if info.path.endswith(".parquet"):
            text += repr(pq.read_table(io.BytesIO(raw)).to_pylist()).encode()
        if any(n in text for n in needles):
            found.append(info.path[len(root) + 1 :])
    return sorted(found)


def test_erase_never_deletes_an_in_flight_ingests_part(ray_session, tmp_path, monkeypatch, figures):
    """An ingest whose workers wrote their parts races an erase of the same bytes."""
    from smartray.tables import commit as commit_module
    from smartray.upkeep import erase

    src_b = make_images(tmp_path / "b", 6)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "copy.png").write_bytes((src_b / "img02.png").read_bytes())
    x = hashlib.sha256((src_b / "img02.png").read_bytes()).hexdigest()
    lake_uri = str(tmp_path / "lake")
    real = commit_module.commit_parts
    seen: dict = {}

    def erase_before_commit(location, spec, parts, **kw):
        if spec.name == "assets" and parts and not seen:
            seen["parts"] = [p.path for p in parts]  # written, not committed
            ingest(IngestConfig(sources=(str(tmp_path / "a"),), lake=lake_uri, sanitize=FAST))
            seen["erase"] = erase([x], lake=lake_uri)  # the same bytes, committed by job A
            seen["left"] = {p: (tmp_path / "lake" / "assets" / p).exists() for p in seen["parts"]}
        return real(location, spec, parts, **kw)

    monkeypatch.setattr(commit_module, "commit_parts", erase_before_commit)
    summary = ingest(IngestConfig(sources=(str(src_b),), lake=lake_uri, sanitize=FAST))
    assert seen["erase"].assets == 1
    assert seen["erase"].files_deleted["assets"] >= 1
    assert all(seen["left"].values()), seen["left"]  # the in-flight parts were spared
    assert summary.counts["ingested"] == 6  # its commit landed, the erased bytes included
    lake = Lake(lake_uri)
    for name in TABLES:
        loads_whole(lake, name)  # every file of every table is there
    assert_exactly_once(lake_uri, n_sources=6, n_assets=6)
    figures.record(
        "test_erase_never_deletes_an_in_flight_ingests_part",
        in_flight_parts=len(seen["parts"]), in_flight_parts_deleted=0,
        erased_files_deleted=seen["erase"].files_deleted["assets"], rows_after=6,
    )  # fmt: skip


def _old_table(loc, spec, data):
    """A table as smartray wrote it before per-file statistics left strings out."""
    from deltalake import DeltaTable, write_deltalake

    uri = loc.table_uri(spec.name)
    old_config = {"delta.enableExpiredLogCleanup": "false"}
    DeltaTable.create(uri, schema=spec.schema, configuration=old_config,
                      storage_options=loc.storage_options or None)  # fmt: skip
    write_deltalake(
        uri, spec.cast(data), mode="append", storage_options=loc.storage_options or None
    )
    DeltaTable(uri, storage_options=loc.storage_options or None).create_checkpoint()


def build_lake(loc, ids, *, old: bool):
    """assets (one a child of ids[0]), asset_sources, splits grouped by ids[1], snapshots."""
    from smartray.tables import ASSET_SOURCES, ASSETS, SNAPSHOTS, SPLITS
    from smartray.tables.parts import write_part
    from smartray.testing import rows

    n = len(ids)
    assets = asset_rows(ids)
    assets = assets.set_column(
        assets.schema.get_field_index("parent_id"), "parent_id",
        pa.array([ids[0] if i == 4 else None for i in range(n)], pa.string()),
    )  # fmt: skip
    sources = rows(ASSET_SOURCES, n).set_column(0, "asset_id", pa.array(ids))
    splits = rows(SPLITS, n)
    splits = splits.set_column(splits.schema.get_field_index("asset_id"), "asset_id", pa.array(ids))
    splits = splits.set_column(
        splits.schema.get_field_index("group_key"), "group_key", pa.array([ids[1]] * n)
    )
    snaps = rows(SNAPSHOTS, n, assets_version=1)
    snaps = snaps.set_column(snaps.schema.get_field_index("asset_id"), "asset_id", pa.array(ids))
    lake = Lake(loc.root, loc.storage_options)
    half = n // 2
    if old:
        _old_table(loc, ASSETS, assets.slice(0, half))
        for spec, data in ((ASSET_SOURCES, sources), (SPLITS, splits), (SNAPSHOTS, snaps)):
            _old_table(loc, spec, data)
    with lake.session("ingest") as s:
        part = write_part(loc, ASSETS, assets.slice(half), prefix=s.run_id)
        s.commit(ASSETS, parts=[part], mode="parts")
        if not old:
            s.commit(ASSETS, assets.slice(0, half))
            s.commit(ASSET_SOURCES, sources)
            s.commit(SPLITS, splits)
            s.commit(SNAPSHOTS, snaps)


@pytest.mark.parametrize("made", ["before-the-fix", "now"])
def test_erased_ids_leave_the_log_and_every_file(made, tmp_path, figures, campaign):
    from smartray.upkeep import erase, maintain

    ids = make_ids(f"stats-{campaign.seed}", 12)
    loc = LakeLocation.from_uri(str(tmp_path / "lake"))
    build_lake(loc, ids, old=made == "before-the-fix")
    gone = [ids[0], ids[1], ids[4]]  # ids[4] is a child of ids[0]
    before = id_mentions(loc, gone)
    assert any("_delta_log" in p for p in before) == (made == "before-the-fix")
    result = erase(ids[:2], lake=loc.root)
    assert result.assets == 3
    maintain(loc, min_retention_hours=0, orphan_grace_minutes=0)
    assert id_mentions(loc, gone) == []
    lake = Lake(loc.root)
    for name in ("assets", "asset_sources", "splits", "snapshots"):
        assert not set(gone) & set(lake.table(name, columns=["asset_id"]).column(0).to_pylist())
        loads_whole(lake, name)
    kept = set(lake.table("assets", columns=["asset_id"]).column(0).to_pylist())
    assert kept == set(ids) - set(gone)
    assert set(lake.table("splits", columns=["group_key"]).column(0).to_pylist()) == {""}
    figures.record(
        f"test_erased_ids_leave_the_log_and_every_file[{made}]",
        files_naming_ids_before=len(before), files_naming_ids_after=0,
        rows_deleted=sum(result.rows.values()),
    )  # fmt: skip


def test_erase_on_an_s3_lake(ray_session, s3_server, tmp_path, figures):
    from smartray.upkeep import erase

    src = make_images(tmp_path / "src", 8)
    lake_uri = s3_lake(s3_server, "erase")
    ingest(IngestConfig(sources=(str(src),), lake=lake_uri, sanitize=FAST))
    lake = Lake(lake_uri)
    loc = lake.location
    ids = sorted(lake.table("assets", columns=["asset_id"]).column(0).to_pylist())
    gone = ids[:3]
    holding = id_mentions(loc, gone)
    data_before = [p for p in holding if "_delta_log" not in p]
    assert data_before
    result = erase(gone, lake=lake_uri)
    assert (result.assets, result.rows["assets"], result.rows["asset_sources"]) == (3, 3, 3)
    client = s3_server.client()
    bucket, prefix = lake_uri.removeprefix("s3://").split("/", 1)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    keys = {o["Key"] for o in listed.get("Contents", [])}
    assert keys
    assert not {f"{prefix}/{p}" for p in data_before} & keys
    assert [p for p in id_mentions(loc, gone) if "_delta_log" not in p] == []
    assert id_mentions(loc, gone) == []
    lake = Lake(lake_uri)
    for name in TABLES:
        loads_whole(lake, name)
    left = set(lake.table("assets", columns=["asset_id"]).column(0).to_pylist())
    assert left == set(ids) - set(gone)
    runs = lake.table("runs", columns=["job", "counts"]).to_pylist()
    erase_runs = [json.loads(r["counts"]) for r in runs if r["job"] == "erase"]
    assert len(erase_runs) == 1
    assert erase_runs[0]["assets"] == 3
    assert erase_runs[0]["files_deleted"] == sum(result.files_deleted.values()) >= 1
    figures.record(
        "test_erase_on_an_s3_lake",
        assets=len(ids), erased=3, data_files_holding_them=len(data_before),
        files_deleted=sum(result.files_deleted.values()), files_naming_them_after=0,
    )  # fmt: skip


# -- many small appends, then maintain -----------------------------------------------------


def test_small_appends_then_maintain_leave_few_files_and_every_pin_readable(
    tmp_path, campaign, figures
):
    from smartray.tables import ASSETS, SNAPSHOTS
    from smartray.testing import rows
    from smartray.upkeep import maintain, pins

    rng = random.Random(campaign.seed)
    lake = Lake(tmp_path / "lake")
    had: dict[int, set[str]] = {}  # assets version -> its ids
    ids: set[str] = set()
    t0 = time.monotonic()
    for i in range(campaign.appends):
        new = make_ids(f"append-{campaign.seed}-{i}", rng.randint(1, 3))
        batch = asset_rows(new)
        blobs = [rng.randbytes(rng.randint(5_000, 30_000)) for _ in new]  # incompressible
        batch = batch.set_column(batch.schema.get_field_index("data"), "data",
                                 pa.array(blobs, pa.large_binary()))  # fmt: skip
        with lake.session("ingest", {"append": i}) as s:  # one run, one runs row, per append
            version = s.commit(ASSETS, batch).version
        ids |= set(new)
        had[version] = set(ids)
    append_s = time.monotonic() - t0
    mid = sorted(had)[len(had) // 2]
    with lake.session("sample", {"name": "mid"}) as s:
        s.commit(SNAPSHOTS, rows(SNAPSHOTS, 1, assets_version=mid, asset_id=sorted(had[mid])[0]))
    files_before = lake.delta("assets").file_uris()
    bytes_before = {i.name: i.bytes for i in lake.describe()}
    target_mb = 1
    result = maintain(lake.location, target_size_mb=target_mb, min_retention_hours=0,
                      orphan_grace_minutes=0)  # fmt: skip
    # Compaction (deltalake's) packs files by their size before it: each small file also
    # carries its own footer and schema, which the packed file no longer repeats, so the
    # bound is on the bytes it packed (RELIABILITY.md gives the files against the bytes
    # left too).
    over = {}
    for info in lake.describe():
        need = math.ceil(bytes_before[info.name] / (target_mb * 2**20)) + 1  # unpartitioned
        if info.files > need:
            over[info.name] = (info.files, need)
    assert over == {}
    assets = next(i for i in lake.describe() if i.name == "assets")
    assert assets.rows == len(ids)
    pinned = [p for p in pins(lake.location) if p.table == "assets"]
    assert {p.version for p in pinned} >= set(had)  # every append's run pins its version
    for version in sorted({p.version for p in pinned}):
        got = lake.table("assets", version, columns=["asset_id"]).column(0).to_pylist()
        assert sorted(got) == sorted(had[version]), version
    snap = lake.table("assets", mid)  # the snapshot's version, image bytes and all
    assert snap.num_rows == len(had[mid])
    other = [p for p in pins(lake.location) if p.table != "assets"]
    for p in other:
        lake.table(p.table, p.version, columns=lake.delta(p.table).schema().to_arrow().names[:1])
    figures.record(
        "test_small_appends_then_maintain_leave_few_files_and_every_pin_readable",
        appends=campaign.appends, assets_files_before=len(files_before),
        assets_files_after=assets.files, assets_mib=round(assets.bytes / 2**20, 2),
        assets_mib_before=round(bytes_before["assets"] / 2**20, 2),
        target_mb=target_mb, pinned_versions_read=len({p.version for p in pinned}) + len(other),
        assets_files_vacuumed=len(next(t for t in result.tables if t.table == "assets").vacuumed),
        append_seconds=round(append_s, 1),
    )  # fmt: skip
