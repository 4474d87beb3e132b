"""Lake-level guarantees (issue #17): orphan parts, racing commits, erase on S3 and
against an in-flight ingest, erased ids out of the log, many small appends then maintain."""

from __future__ import annotations

import json
import logging
import os
import signal
import time

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
