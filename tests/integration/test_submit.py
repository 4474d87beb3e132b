"""`smartray submit` against a real token-protected Ray head (`cluster/local_head.py`).

These are the commands of docs/deploy.md ("A Ray head on this machine"). The head is
started after the suite's shared Ray is shut down, on free ports with its own temp dir,
and stopped by its process ids.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from smartray.demo.corpus import build_corpus
from smartray.tables import Lake

pytestmark = pytest.mark.own_cluster

ROOT = Path(__file__).resolve().parents[2]
HEAD_SCRIPT = ROOT / "cluster" / "local_head.py"
# What a user's shell may hold; none of it may reach the cluster.
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIDSUBMITTESTKEY000",
    "AWS_SECRET_ACCESS_KEY": "submit/test/secret/value/never/sent/0000",
}


# Where S3 is: this travels with a job.
S3_PLACE = {"AWS_REGION": "eu-north-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:8333"}


def head(action, state_dir, *extra, timeout=180):
    return subprocess.run(
        [sys.executable, str(HEAD_SCRIPT), action, "--state-dir", str(state_dir), *extra],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


def submit(*args, env=None, timeout=300):
    ambient = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    full_env = {**ambient, **SECRETS, **S3_PLACE, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "smartray.cli", "submit", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=full_env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def local_head(tmp_path_factory):
    """`python cluster/local_head.py start --num-cpus 2`, and `stop` afterwards."""
    import ray

    ray.shutdown()  # the suite's shared Ray, if it ran: this test brings its own
    state = tmp_path_factory.mktemp("head-state")
    started = head("start", state, "--num-cpus", "2")
    assert started.returncode == 0, started.stderr
    info = json.loads((state / "head.json").read_text())
    # the line `start` prints for the user's shell (docs/deploy.md runs it)
    export = next(x for x in started.stdout.splitlines() if x.strip().startswith("export "))
    exports = dict(kv.split("=", 1) for kv in shlex.split(export)[1:])
    yield {"state": state, "exports": exports, **info}
    stopped = head("stop", state)
    assert stopped.returncode == 0, stopped.stderr
    session = int(info["pid"])
    assert not _session_processes(session), "processes of the head outlived `stop`"
    assert head("status", state).returncode == 1


def _session_processes(session):
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[3]) == session:
                alive.append(int(entry.name))
    return alive


def test_head_serves_the_jobs_api_on_loopback_only_with_the_token(local_head):
    assert local_head["dashboard"].startswith("http://127.0.0.1:")
    token = Path(local_head["token_file"])
    assert token.stat().st_mode & 0o077 == 0, "the token file must be private"


def test_submit_ingest_runs_on_the_head_and_fills_the_lake(local_head, tmp_path):
    data = build_corpus(tmp_path / "demo-data")
    lake = tmp_path / "lake"
    # as docs/deploy.md: the printed exports, then `smartray submit ingest DATA --lake LAKE`
    out = submit("ingest", str(data), "--lake", str(lake), env=local_head["exports"])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # the job's own output streamed back
    summary = re.search(r"listed (\d+), unchanged 0, ingested (\d+), duplicates (\d+), "
                        r"quarantined (\d+)", out.stdout)  # fmt: skip
    assert summary, out.stdout[-3000:]
    listed, ingested, duplicates, quarantined = map(int, summary.groups())
    assert ingested > 0
    assert listed == ingested + duplicates + quarantined
    assets = Lake(str(lake)).table("assets", columns=["media_type"], to="polars")
    videos = Lake(str(lake)).table("videos")
    assert (assets["media_type"] == "image").sum() + videos.num_rows == ingested
    assert Lake(str(lake)).table("quarantine").num_rows == quarantined
    assert "succeeded (exit 0)" in out.stderr

    # what the cluster holds about the job: the S3 region travelled, no key did
    job_id = re.search(r"job (raysubmit_\w+) submitted", out.stderr).group(1)
    from ray.job_submission import JobSubmissionClient

    # this process's Ray already loaded a token (its own); send the head's explicitly
    token = Path(local_head["token_file"]).read_text()
    client = JobSubmissionClient(
        local_head["dashboard"], headers={"Authorization": f"Bearer {token}"}
    )
    info = client.get_job_info(job_id)
    assert info.runtime_env["env_vars"] == S3_PLACE
    assert info.entrypoint == f"python -m jobs.ingest {data} --lake {lake}"
    assert not any(v in json.dumps(info.runtime_env) for v in SECRETS.values())


def test_exports_name_the_head_and_its_token(local_head):
    assert local_head["exports"] == {
        "RAY_ADDRESS": local_head["dashboard"],
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": local_head["token_file"],
    }


def test_the_jobs_exit_code_comes_back(local_head, tmp_path):
    out = submit(
        "query", "SELECT * FROM no_such_table", "--lake", str(tmp_path / "empty-lake"),
        "--address", local_head["dashboard"], "--token-file", local_head["token_file"],
    )  # fmt: skip
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert "failed (exit 2)" in out.stderr


def test_a_wrong_token_is_refused(local_head, tmp_path):
    wrong = tmp_path / "wrong_token"
    wrong.write_text("0" * 64)
    out = submit("tables", "--address", local_head["dashboard"], "--token-file", str(wrong))
    assert out.returncode == 2
    assert "refused the request: Authentication failed: Forbidden: Invalid auth" in out.stderr


def test_a_missing_token_is_refused(local_head, tmp_path):
    # no token anywhere: not in the env, no token file, and a HOME without ~/.ray/auth_token
    env = {"HOME": str(tmp_path), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "",
           "RAY_AUTH_TOKEN_PATH": ""}  # fmt: skip
    out = submit("tables", "--address", local_head["dashboard"], env=env)
    assert out.returncode == 2
    assert "refused the request: Token authentication is enabled but Ray" in out.stderr
