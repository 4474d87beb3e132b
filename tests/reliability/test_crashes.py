"""Crash campaigns (issue #17): workers killed mid-ingest, and a driver killed at a random
moment then re-run. Seeded; `--kill-seeds` seeds each (RELIABILITY.md)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cloudpickle

from smartray import Lake
from smartray.ingest import IngestConfig, ingest
from smartray.sanitize import SanitizeConfig
from smartray.sources import SourceReader
from tests.reliability import lakecheck

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # ship the reader to workers
FAST = SanitizeConfig(blur=False)


class KillOnce(SourceReader):
    """Kills its worker once per chosen file: before reading it (`read`), or after the
    block holding it has written its Parquet part (`part`, which leaves an orphan part:
    the retried task writes another)."""

    def __init__(self, kills: dict[str, str], marker_dir: str):
        super().__init__()
        self.kills, self.marker_dir = kills, marker_dir

    def read(self, entry, max_bytes=None):
        name = os.path.basename(entry.uri)
        marker = Path(self.marker_dir) / f"{name}.killed"
        if name in self.kills and not marker.exists():
            marker.touch()
            if self.kills[name] == "read":
                os._exit(1)  # the worker dies mid-block, as on an OOM kill
            import smartray.ingest.outcomes as outcomes

            real = outcomes.write_part

            def write_then_die(*args, **kwargs):
                real(*args, **kwargs)
                os._exit(1)  # the part is on storage; the task never returns it

            outcomes.write_part = write_then_die
        return super().read(entry, max_bytes)


def test_workers_killed_once_per_chosen_key_lose_and_duplicate_nothing(
    ray_session, tmp_path, campaign, figures
):
    totals = {"seeds": 0, "kills": 0, "rows_lost": 0, "duplicates": 0, "quarantined": 0}
    orphans_before, orphans_after, wall = [], [], []
    for i in range(campaign.kill_seeds):
        seed = campaign.seed + i
        rng = random.Random(seed)
        root = tmp_path / f"seed{seed}"
        n = rng.randint(12, 20)
        source = lakecheck.make_images(root / "src", n, seed)
        names = sorted(os.path.basename(u) for u in source)
        chosen = rng.sample(names, rng.randint(1, 4))
        kills = {name: rng.choice(["read", "part"]) for name in chosen}
        (root / "markers").mkdir()
        lake_uri = str(root / "lake")
        cfg = IngestConfig(
            sources=(str(root / "src"),), lake=lake_uri, sanitize=FAST,
            rows_per_block=rng.randint(2, 6),
        )  # fmt: skip
        t0 = time.monotonic()
        summary = ingest(cfg, reader=KillOnce(kills, str(root / "markers")))
        wall.append(time.monotonic() - t0)
        killed = sorted(p.name.removesuffix(".killed") for p in (root / "markers").iterdir())
        assert killed == sorted(kills), f"seed {seed}: the kills planned did not all happen"
        t = lakecheck.tally(lake_uri, source)
        assert (t.lost, t.duplicates, t.quarantined, t.assets) == (0, 0, 0, n), f"seed {seed}"
        assert (summary.counts["ingested"], summary.counts["worker_crash"]) == (n, 0)
        orphans_before.append(len(lakecheck.orphans(root / "lake")))
        lakecheck.maintain_sweeping_orphans(lake_uri)
        left = lakecheck.orphans(root / "lake")
        orphans_after.append(len(left))
        assert left == [], f"seed {seed}: maintain left orphan files {left}"
        t = lakecheck.tally(lake_uri, source)  # maintain deleted no live file
        assert (t.lost, t.duplicates, t.assets) == (0, 0, n)
        totals["seeds"] += 1
        totals["kills"] += len(kills)
        totals["rows_lost"] += t.lost
        totals["duplicates"] += t.duplicates
        totals["quarantined"] += t.quarantined
    figures.record(
        "test_workers_killed_once_per_chosen_key",
        **totals,
        orphans_before_maintain=sum(orphans_before),
        orphans_after_maintain=sum(orphans_after),
        max_ingest_s=round(max(wall), 2),
    )


DRIVER = """
import sys
from smartray import Lake
from smartray.ingest import IngestConfig, ingest
from smartray.sanitize import SanitizeConfig
src, lake = sys.argv[1:3]
cfg = IngestConfig(sources=(src,), lake=lake, sanitize=SanitizeConfig(blur=False), rows_per_block=2)
print(ingest(cfg).line(), flush=True)
"""


def start_driver(ray_session, src: Path, lake_uri: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DRIVER), str(src), lake_uri],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def test_a_driver_killed_at_a_random_moment_leaves_a_lake_the_rerun_completes(
    ray_session, tmp_path, campaign, figures
):
    n = 40
    # How long a whole run takes, and when its workers write their first part, to draw
    # the kill moments within it: half over the whole run, half from the first part on
    # (the tasks and commits, where a kill leaves parts and half-committed tables).
    source = lakecheck.make_images(tmp_path / "probe" / "src", n, seed=campaign.seed)
    t0 = time.monotonic()
    proc = start_driver(ray_session, tmp_path / "probe" / "src", str(tmp_path / "probe" / "lake"))
    first_part = None
    while proc.poll() is None and time.monotonic() - t0 < 300:
        if first_part is None and list((tmp_path / "probe" / "lake").glob("assets/part-*")):
            first_part = time.monotonic() - t0
        time.sleep(0.01)
    out = proc.communicate(timeout=300)[0].decode()
    span = time.monotonic() - t0
    assert proc.returncode == 0, out[-3000:]
    assert first_part is not None
    assert lakecheck.tally(str(tmp_path / "probe" / "lake"), source).lost == 0

    found = {"seeds": 0, "killed_before_end": 0, "lost": 0, "duplicates": 0}
    partial, orphans_before, orphans_left, moments = 0, 0, 0, []
    for i in range(campaign.kill_seeds):
        seed = campaign.seed + i
        rng = random.Random(seed)
        root = tmp_path / f"seed{seed}"
        source = lakecheck.make_images(root / "src", n, seed)
        lake_uri = str(root / "lake")
        delay = rng.uniform(0 if i % 2 == 0 else first_part, span)
        moments.append(round(delay, 2))
        proc = start_driver(ray_session, root / "src", lake_uri)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            found["killed_before_end"] += 1
        if (root / "lake").exists():
            lakecheck.loads(lake_uri)  # every table there is loads
            if Lake(lake_uri).exists("assets"):
                partial += Lake(lake_uri).table("assets", columns=["asset_id"]).num_rows > 0
        summary = ingest(IngestConfig(sources=(str(root / "src"),), lake=lake_uri, sanitize=FAST))
        assert lakecheck.loads(lake_uri) == list(lakecheck.INGEST_TABLES)
        t = lakecheck.tally(lake_uri, source)
        assert (t.lost, t.duplicates, t.quarantined, t.assets) == (0, 0, 0, n), f"seed {seed}"
        runs = Lake(lake_uri).table("runs", columns=["status"]).column("status").to_pylist()
        assert set(runs) == {"succeeded"}, f"seed {seed}: {runs}"
        assert summary.counts["listed"] == n
        orphans_before += len(lakecheck.orphans(root / "lake"))
        lakecheck.maintain_sweeping_orphans(lake_uri)
        left = lakecheck.orphans(root / "lake")
        orphans_left += len(left)
        assert left == [], f"seed {seed}: the killed driver's files stay after maintain: {left}"
        assert lakecheck.tally(lake_uri, source).lost == 0
        found["seeds"] += 1
        found["lost"] += t.lost
        found["duplicates"] += t.duplicates
    figures.record(
        "test_a_driver_killed_at_a_random_moment",
        **found,
        rows_committed_before_kill_seeds=partial,
        orphans_before_maintain=orphans_before,
        orphans_after_maintain=orphans_left,
        run_span_s=round(span, 2),
        first_part_s=round(first_part, 2),
        kill_moments_s=moments,
    )
