"""Exactly once under crashes: workers that die, and a driver killed mid-run."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cloudpickle
import pytest

from smartray import Lake
from smartray.ingest import IngestConfig, ingest
from smartray.sanitize import SanitizeConfig
from smartray.sources import SourceReader
from smartray.testing import files

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # ship the readers to workers
FAST = SanitizeConfig(blur=False)


class KillOnce(SourceReader):
    """Kills its worker process the first time it reads each chosen file."""

    def __init__(self, names, marker_dir):
        super().__init__()
        self.names, self.marker_dir = set(names), str(marker_dir)

    def read(self, entry, max_bytes=None):
        name = os.path.basename(entry.uri)
        marker = os.path.join(self.marker_dir, name + ".killed")
        if name in self.names and not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)  # the worker dies mid-batch, as on an OOM kill
        return super().read(entry, max_bytes)


class KillAlways(SourceReader):
    """Kills its worker every time it reads `name`: a poisonous input."""

    def __init__(self, name):
        super().__init__()
        self.name = name

    def read(self, entry, max_bytes=None):
        if entry.uri.endswith(self.name):
            os._exit(1)
        return super().read(entry, max_bytes)


def make_images(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"img{i:02d}.png").write_bytes(files.png(files.pattern(16, 16, seed=100 + i)))
    return folder


def assert_exactly_once(lake_uri, n_sources, n_assets):
    lake = Lake(lake_uri)
    ids = lake.table("assets", columns=["asset_id"]).column("asset_id").to_pylist()
    assert len(ids) == len(set(ids)) == n_assets
    src = lake.table("asset_sources", columns=["source_uri"]).column("source_uri").to_pylist()
    assert len(src) == len(set(src)) == n_sources


def test_workers_killed_once_per_key_lose_and_duplicate_nothing(tmp_path):
    src = make_images(tmp_path / "src", 12)
    lake_uri = str(tmp_path / "lake")
    reader = KillOnce({"img01.png", "img06.png", "img11.png"}, tmp_path)
    cfg = IngestConfig(sources=(str(src),), lake=lake_uri, sanitize=FAST, rows_per_block=4)
    summary = ingest(cfg, reader=reader)
    assert sorted(p.name for p in tmp_path.glob("*.killed")) == [
        "img01.png.killed", "img06.png.killed", "img11.png.killed"
    ]  # fmt: skip
    assert (summary.counts["ingested"], summary.counts["quarantined"]) == (12, 0)
    assert_exactly_once(lake_uri, n_sources=12, n_assets=12)


def test_an_input_that_always_kills_its_worker_is_quarantined_alone(tmp_path):
    src = make_images(tmp_path / "src", 8)
    lake_uri = str(tmp_path / "lake")
    cfg = IngestConfig(
        sources=(str(src),), lake=lake_uri, sanitize=FAST, rows_per_block=4, task_retries=1
    )
    summary = ingest(cfg, reader=KillAlways("img02.png"))
    assert summary.counts["worker_crash"] == 1
    assert summary.counts["ingested"] == 7  # its block-mates were ingested one by one
    q = Lake(lake_uri).table("quarantine", to="polars").to_dicts()
    assert [(os.path.basename(r["source_uri"]), r["reason"]) for r in q] == [
        ("img02.png", "worker_crash")
    ]
    assert "worker died" in q[0]["detail"]
    assert_exactly_once(lake_uri, n_sources=7, n_assets=7)


def test_a_poisonous_input_in_a_block_sized_by_work_costs_only_itself(tmp_path):
    src = make_images(tmp_path / "src", 40)  # ~40 ms of work: one block of 40 inputs
    lake_uri = str(tmp_path / "lake")
    cfg = IngestConfig(sources=(str(src),), lake=lake_uri, sanitize=FAST, task_retries=0)
    summary = ingest(cfg, reader=KillAlways("img17.png"))
    assert (summary.counts["worker_crash"], summary.counts["ingested"]) == (1, 39)
    q = Lake(lake_uri).table("quarantine", to="polars").to_dicts()
    assert [(os.path.basename(r["source_uri"]), r["reason"]) for r in q] == [
        ("img17.png", "worker_crash")
    ]
    assert_exactly_once(lake_uri, n_sources=39, n_assets=39)


DRIVER = """
import sys, time, gc
from smartray.ingest import IngestConfig, ingest
from smartray.sanitize import SanitizeConfig
from smartray.sources import SourceReader

class SlowReader(SourceReader):
    def read(self, entry, max_bytes=None):
        time.sleep(0.3)
        return super().read(entry, max_bytes)

src, lake, mode = sys.argv[1:4]
if mode == "crash-between-commits":
    import smartray.tables.commit as p  # what every run session commits through
    real = p.commit_rows
    def commit_then_die(location, spec, rows, **kw):
        if spec.name == "asset_sources":
            import os; os._exit(9)  # assets are committed, their sources not yet
        return real(location, spec, rows, **kw)
    p.commit_rows = commit_then_die
cfg = IngestConfig(sources=(src,), lake=lake, sanitize=SanitizeConfig(blur=False), rows_per_block=2)
ingest(cfg, reader=SlowReader() if mode == "slow" else None)
gc.collect()
"""


def run_driver(ray_session, src, lake_uri, mode):
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DRIVER), str(src), lake_uri, mode],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["slow", "crash-between-commits"])
def test_a_killed_driver_leaves_a_table_that_loads_and_the_rerun_completes_it(
    ray_session, tmp_path, mode
):
    src = make_images(tmp_path / "src", 10)
    (src / "bad.jpg").write_bytes(files.random_bytes())
    lake_uri = str(tmp_path / "lake")
    proc = run_driver(ray_session, src, lake_uri, mode)
    if mode == "slow":  # kill -9 once the workers have written their first parts
        deadline = time.monotonic() + 120
        while not list((tmp_path / "lake" / "assets").glob("part-*.parquet")):
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    assert proc.returncode in (-signal.SIGKILL, 9)
    lake = Lake(lake_uri)
    for name in ("assets", "asset_sources", "quarantine", "runs"):  # every table loads
        lake.table(name, columns=lake.delta(name).schema().to_arrow().names[:1])
    before = lake.table("assets", columns=["asset_id"]).num_rows
    assert before == (10 if mode == "crash-between-commits" else 0)

    summary = ingest(IngestConfig(sources=(str(src),), lake=lake_uri, sanitize=FAST))
    assert summary.counts["ingested"] == 10 - before
    assert_exactly_once(lake_uri, n_sources=10, n_assets=10)
    q = Lake(lake_uri).table("quarantine", columns=["source_uri", "reason"]).to_pylist()
    assert [(os.path.basename(r["source_uri"]), r["reason"]) for r in q] == [("bad.jpg", "corrupt")]
    runs = Lake(lake_uri).table("runs", columns=["status"]).column("status").to_pylist()
    assert runs == ["succeeded"]  # the killed run recorded nothing
