"""S3 campaigns (issue #17) against SeaweedFS on loopback: two ingest jobs committing to
one S3 lake at once, and ingests through a fault-injecting proxy (`faultproxy.py`): a
dropped reply to a commit, 503s, a connection cut mid-write, slow reads."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from smartray import Lake
from smartray.ingest import IngestConfig, ingest
from smartray.sanitize import SanitizeConfig
from smartray.testing import files
from tests.reliability import lakecheck
from tests.reliability.faultproxy import FaultProxy, Rule

FAST = SanitizeConfig(blur=False)
FAIL_WITHIN_S = 180  # a faulty run must end (succeed or fail) within this


@pytest.fixture(scope="module")
def proxy(s3_server, campaign):
    p = FaultProxy(s3_server.endpoint, seed=campaign.seed).start()
    yield p
    p.stop()


def new_bucket(s3_server, what: str) -> str:
    name = f"{what}-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


def upload_images(s3_server, folder: Path, n: int, seed: int, bucket: str, prefix: str):
    """`n` images (and one corrupt file) uploaded under s3://bucket/prefix/; the images'
    URIs to sha256."""
    local = lakecheck.make_images(folder, n, seed)
    (folder / "corrupt.jpg").write_bytes(files.random_bytes(seed=seed))
    client = s3_server.client()
    out = {}
    for path in sorted(folder.iterdir()):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())
        if str(path) in local:
            out[f"s3://{bucket}/{prefix}/{path.name}"] = local[str(path)]
    return out


def log_actions(s3_server, bucket: str, prefix: str, table: str) -> dict[int, list[dict]]:
    """Every commit of an S3 table's log: version to its actions."""
    client = s3_server.client()
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix}/{table}/_delta_log/"
    )
    out = {}
    for page in pages:
        for o in page.get("Contents", []):
            name = o["Key"].rsplit("/", 1)[1]
            if name.endswith(".json") and name[:-5].isdigit():
                body = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode()
                out[int(name[:-5])] = [json.loads(x) for x in body.splitlines() if x.strip()]
    return out


def replayed_txns(s3_server, bucket: str, prefix: str) -> int:
    """App transactions `(app id, version)` committed more than once, over every table."""
    replays = 0
    for table in lakecheck.INGEST_TABLES:
        seen = set()
        for _, actions in sorted(log_actions(s3_server, bucket, prefix, table).items()):
            for a in actions:
                if "txn" in a:
                    key = (a["txn"]["appId"], a["txn"]["version"])
                    replays += key in seen
                    seen.add(key)
    return replays


def driver_env(endpoint: str) -> dict[str, str]:
    import ray

    return {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
    }


WRITER = """
import json, sys
from smartray.ingest import IngestConfig, ingest
from smartray.sanitize import SanitizeConfig
root, lake, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    cfg = IngestConfig(sources=(f"{root}/{i:03d}",), lake=lake, sanitize=SanitizeConfig(blur=False))
    s = ingest(cfg)
    print(json.dumps({"run_id": s.run_id, "versions": s.versions, "counts": s.counts}), flush=True)
"""


def test_two_ingest_jobs_writing_one_s3_lake_at_once_lose_no_commit(
    ray_session, s3_server, tmp_path, campaign, figures
):
    n = campaign.s3_commits
    bucket = new_bucket(s3_server, "lake")
    lake_uri = f"s3://{bucket}/lake"
    source: dict[str, str] = {}
    for w in ("a", "b"):
        for i in range(n):  # each ingest adds two new images: one commit per table
            found = lakecheck.make_images(
                tmp_path / w / f"{i:03d}", 2, seed=campaign.seed * 10**4 + ord(w) * 100 + i
            )
            source.update(found)
    t0 = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), str(tmp_path / w), lake_uri, str(n)],
            env=driver_env(s3_server.endpoint),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for w in ("a", "b")
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err.decode()[-3000:]
        outs.append([json.loads(x) for x in out.decode().splitlines() if x.startswith("{")])
    wall = time.monotonic() - t0
    assert [len(o) for o in outs] == [n, n]

    t = lakecheck.tally(lake_uri, source)
    assert (t.lost, t.duplicates, t.quarantined, t.assets) == (0, 0, 0, 4 * n)
    runs = Lake(lake_uri).table("runs", columns=["run_id", "status"]).to_pylist()
    ran = [r["run_id"] for o in outs for r in o]
    assert sorted(r["run_id"] for r in runs) == sorted(ran)
    # Every commit a run reported is in the log, as that run's commit.
    lost_commits = 0
    checked = 0
    logs = {
        name: log_actions(s3_server, bucket, "lake", name)
        for name in ("assets", "asset_sources", "runs")
    }
    for r in (r for o in outs for r in o):
        for name in ("assets", "asset_sources"):
            version = r["versions"][name]
            txns = [a["txn"]["appId"] for a in logs[name].get(version, []) if "txn" in a]
            checked += 1
            lost_commits += txns != [r["run_id"]]
    assert lost_commits == 0
    commits = {
        name: sum(any("txn" in a for a in acts) for acts in log.values())
        for name, log in logs.items()
    }
    assert commits["assets"] == commits["asset_sources"] == commits["runs"] == 2 * n
    assert replayed_txns(s3_server, bucket, "lake") == 0
    figures.record(
        "test_two_ingest_jobs_writing_one_s3_lake_at_once",
        commits_per_writer=n,
        commits_in_log=commits,
        commits_checked=checked,
        commits_lost=lost_commits,
        rows_lost=t.lost,
        duplicates=t.duplicates,
        wall_s=round(wall, 1),
    )


DRIVER = """
import sys
from smartray.ingest import IngestConfig, ingest
from smartray.sanitize import SanitizeConfig
src, lake = sys.argv[1:3]
cfg = IngestConfig(sources=(src,), lake=lake, sanitize=SanitizeConfig(blur=False), rows_per_block=3)
print(ingest(cfg).line(), flush=True)
"""


def faults(name: str, rng: random.Random) -> list[Rule]:
    """The fault plan of each scenario, drawn from `rng`."""
    commit = r"/_delta_log/\d{20}\.json$"
    if name == "commit_reply_dropped":
        table = rng.choice(["assets", "asset_sources", "runs"])
        return [Rule("PUT", f"/{table}{commit}", "drop_reply", skip=rng.randint(0, 1))]
    if name == "http_503":
        return [Rule("*", "", "status", status=503, times=rng.randint(6, 15), p=0.25)]
    if name == "part_upload_cut":
        return [Rule("PUT", r"/assets/part-[^/?]*\.parquet", "cut", cut_after=rng.randint(1, 2048))]
    if name == "commit_upload_cut":
        return [Rule("PUT", commit, "cut", skip=rng.randint(0, 3), cut_after=rng.randint(1, 200))]
    if name == "stalled_read":  # a reply that never comes: the client's timeout must end it
        return [Rule("GET", commit, "delay", delay_s=3600, skip=rng.randint(0, 2))]
    if name == "slow_reads":
        return [Rule("GET", "", "delay", delay_s=rng.uniform(1, 4), times=rng.randint(3, 8))]
    raise AssertionError(name)


SCENARIOS = [
    "commit_reply_dropped",
    "http_503",
    "part_upload_cut",
    "commit_upload_cut",
    "slow_reads",
    "stalled_read",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_an_s3_fault_fails_in_bounded_time_or_succeeds_once_and_a_rerun_completes(
    ray_session, s3_server, proxy, tmp_path, campaign, figures, scenario
):
    seed = campaign.seed + SCENARIOS.index(scenario)
    rng = random.Random(seed)
    raw, lake_bucket = new_bucket(s3_server, "raw"), new_bucket(s3_server, "lake")
    n = 12
    source = upload_images(s3_server, tmp_path / "src", n, seed, raw, "src")
    src_uri, lake_uri = f"s3://{raw}/src", f"s3://{lake_bucket}/lake"
    rules = faults(scenario, rng)
    proxy.set_rules(rules, seed=seed)
    logged = len(proxy.log)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DRIVER), src_uri, lake_uri],
        env=driver_env(proxy.endpoint),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out = proc.communicate(timeout=FAIL_WITHIN_S)[0].decode()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out = proc.communicate()[0].decode()
        pytest.fail(f"{scenario}: the job hung past {FAIL_WITHIN_S} s: {out[-3000:]}")
    finally:
        proxy.set_rules([])
    took = time.monotonic() - t0
    applied = sum(r.applied for r in rules)
    assert applied >= 1, f"{scenario}: no fault was injected: {proxy.log[-5:]}"
    if proc.returncode == 0:  # succeeded: exactly once
        t = lakecheck.tally(lake_uri, source)
        assert (t.lost, t.duplicates, t.quarantined, t.assets) == (0, 0, 1, n), out[-3000:]
    else:  # failed: in bounded time (above), with a loadable lake and nothing twice
        assert proc.returncode == 1, out[-3000:]
        lakecheck.loads(lake_uri)
        if Lake(lake_uri).exists("asset_sources"):
            assert lakecheck.tally(lake_uri, source).duplicates == 0
    assert replayed_txns(s3_server, lake_bucket, "lake") == 0

    summary = ingest(IngestConfig(sources=(src_uri,), lake=lake_uri, sanitize=FAST))
    assert lakecheck.loads(lake_uri) == list(lakecheck.INGEST_TABLES)
    t = lakecheck.tally(lake_uri, source)
    assert (t.lost, t.duplicates, t.quarantined, t.assets) == (0, 0, 1, n)
    assert replayed_txns(s3_server, lake_bucket, "lake") == 0
    assert summary.counts["listed"] == n + 1
    # What the client did next with each faulted path (a dropped commit reply: the retried
    # conditional PUT finds the commit there, 412, and the app transaction says it is done).
    hit = {e.target for e in proxy.faults(logged)}
    after = [f"{e.method} {e.status}" for e in proxy.log[logged:] if e.target in hit]
    figures.record(
        f"test_s3_fault[{scenario}]",
        faulted_paths_requests=after,
        seed=seed,
        faults_injected=applied,
        faulted=[f"{e.action} {e.method} {e.target} ({e.status})" for e in proxy.faults(logged)],
        requests=len(proxy.log) - logged,
        outcome="succeeded" if proc.returncode == 0 else "failed",
        seconds=round(took, 1),
        rows_lost_after_rerun=t.lost,
        duplicates_after_rerun=t.duplicates,
        replayed_txns=0,
    )
